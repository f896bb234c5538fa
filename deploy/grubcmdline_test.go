package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// kernelParams splits a kernel command line as Linux's parse_args does:
// an argument ends at whitespace outside double quotes; a quote opening
// the argument or its value is dropped with the quote that ends the
// argument, and any other quote is kept.
func kernelParams(s string) []string {
	var out []string
	for {
		s = strings.TrimLeft(s, " \t\n")
		if s == "" {
			return out
		}
		quoted := s[0] == '"'
		if quoted {
			s = s[1:]
		}
		in, eq, i := quoted, -1, 0
		for ; i < len(s) && (in || !strings.ContainsRune(" \t\n", rune(s[i]))); i++ {
			if eq < 0 && s[i] == '=' {
				eq = i
			}
			if s[i] == '"' {
				in = !in
			}
		}
		arg := s[:i]
		s = s[i:]
		end, valStart := len(arg), -1
		if eq >= 0 {
			valStart = eq + 1
			if valStart < end && arg[valStart] == '"' {
				valStart++
				if arg[end-1] == '"' {
					end--
				}
			}
		}
		if quoted && end > 0 && end == len(arg) && arg[end-1] == '"' {
			end--
		}
		if eq < 0 {
			out = append(out, arg[:end])
			continue
		}
		out = append(out, arg[:eq]+" = "+arg[valStart:max(end, valStart)])
	}
}

// The kernel booted from a grub.cfg menu entry gets the arguments its
// boot entry names, as the kernel reads them: GRUB boots a multiboot
// kernel that prints its command line (made by the same GRUB code as a
// Linux one) with the words of the default entry's linux line, under
// QEMU. GRUB 2.06 writes a backslash before each double quote it is
// given, so x="a b" passed on as written would reach the kernel as two
// broken arguments.
func TestGrubHandsKernelEntryArgs(t *testing.T) {
	for _, tool := range []string{"gcc", "ld", "grub-mkimage", "qemu-system-x86_64"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipping: %s is not installed (CI installs gcc, grub-pc-bin, qemu-system-x86)", tool)
		}
	}
	bootImg := "/usr/lib/grub/i386-pc/boot.img"
	if _, err := os.Stat(bootImg); err != nil {
		t.Skipf("skipping: no GRUB for BIOS (CI installs grub-pc-bin): %v", err)
	}
	f := newFixture(t)
	f.s.Repo().Config().Set(ConfigBootloader, "grub2")
	kargs := []string{"root=LABEL=root", `x="a b"`, `acpi_osi="!Windows 2015"`, `q="one"`, `"w=c d"`, "quiet"}
	f.deploy(f.commit("os", osTree("6.1.0", nil)).String(), DeployOptions{Kargs: kargs})
	cfg, err := os.ReadFile(filepath.Join(f.path, "boot", "loader", "grub.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\tlinux '[^']*' (.*)$`).FindSubmatch(cfg)
	if m == nil {
		t.Fatalf("no linux line in grub.cfg:\n%s", cfg)
	}
	entries, err := readEntries(filepath.Join(f.path, "boot", "loader", "entries"))
	if err != nil {
		t.Fatal(err)
	}
	want := kernelParams(entries[0].options)

	dir := t.TempDir()
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	write := func(name, text string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A multiboot kernel that writes its command line to the first serial
	// port, then ends QEMU through its debug exit port.
	write("start.S", `.section .multiboot
.align 4
.long 0x1BADB002, 0, -0x1BADB002
.text
.globl _start
_start:
	mov $stack, %esp
	push %ebx
	call kmain
1:	hlt
	jmp 1b
.bss
.space 4096
stack:
`)
	write("kmain.c", `static void out(unsigned short port, unsigned char v) { __asm__ volatile("outb %0,%1" :: "a"(v), "Nd"(port)); }
static void say(const char *s) { while (*s) out(0x3f8, *s++); }
void kmain(unsigned int *mbi) {
	say("CMDLINE<");
	if (mbi[0] & 4) say((const char *)mbi[4]);
	say(">END\n");
	out(0xf4, 0);
}
`)
	write("kernel.ld", "ENTRY(_start)\nSECTIONS { . = 1M; .text : { *(.multiboot) *(.text*) } .rodata : { *(.rodata*) } .data : { *(.data*) } .bss : { *(.bss*) } }\n")
	run("gcc", "-m32", "-ffreestanding", "-fno-pie", "-O1", "-c", "kmain.c", "-o", "kmain.o")
	run("gcc", "-m32", "-c", "start.S", "-o", "start.o")
	write("md/boot/grub/grub.cfg", "set timeout=0\nmenuentry test {\n\tmultiboot /kernel "+string(m[1])+"\n\tboot\n}\n")
	run("ld", "-m", "elf_i386", "-T", "kernel.ld", "-o", "md/kernel", "start.o", "kmain.o")
	run("tar", "-C", "md", "-cf", "memdisk.tar", ".")
	run("grub-mkimage", "-O", "i386-pc", "-o", "core.img", "-p", "(memdisk)/boot/grub", "-m", "memdisk.tar",
		"biosdisk", "memdisk", "tar", "configfile", "normal", "multiboot")
	boot, err := os.ReadFile(bootImg)
	if err != nil {
		t.Fatal(err)
	}
	core, err := os.ReadFile(filepath.Join(dir, "core.img"))
	if err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(disk, append(boot, core...), 0o644); err != nil {
		t.Fatal(err)
	}
	run("truncate", "-s", "2M", disk)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The debug exit makes QEMU's status non-zero: what counts is the line.
	out, _ := exec.CommandContext(ctx, "qemu-system-x86_64", "-nographic", "-monitor", "none", "-serial", "stdio",
		"-display", "none", "-m", "64", "-drive", "file="+disk+",format=raw",
		"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04").CombinedOutput()
	got := regexp.MustCompile(`CMDLINE<(.*)>END`).FindSubmatch(out)
	if got == nil {
		t.Fatalf("the kernel printed no command line:\n%s", out)
	}
	if params := kernelParams(string(got[1])); !slices.Equal(params, want) {
		t.Errorf("GRUB handed the kernel %s\nwhich it reads as %q\nthe entry's options %s\nread as %q", got[1], params, entries[0].options, want)
	}
}
