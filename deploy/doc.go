// Package deploy manages a sysroot: the root filesystem of a machine that
// boots one of several deployments (checkouts of commits), switches between
// them atomically and rolls back in one step. It follows OSTree's
// `ostree admin`, under otree names.
//
// # Layout
//
//	otree/repo                                   the system repository (bare)
//	otree/lock                                   serialises every change to the sysroot
//	otree/deploy/<os>/var                        the stateroot's /var, shared by its deployments
//	otree/deploy/<os>/deploy/<id>.<serial>       one deployment: a hardlink checkout of commit <id>
//	otree/deploy/<os>/deploy/<id>.<serial>.origin  where it came from (INI: [origin] refspec=...)
//	otree/boot.<B> -> boot.<B>.<S>               the links the kernel argument resolves through
//	otree/boot.<B>.<S>/<os>/<bootcsum>/<n> -> ../../../deploy/<os>/deploy/<id>.<serial>
//	boot/loader -> loader.<B>                    the atomic switch
//	boot/loader.<B>/entries/otree-<k>-<os>.conf  Boot Loader Specification entries
//	boot/otree/<os>-<bootcsum>/vmlinuz-<kver>, initramfs-<kver>.img
//	boot/otree/initramfs-overlays/<id>.img       overlay initramfs images (DeployOptions.OverlayInitrds)
//
// B is the boot version (0 or 1) and S the sub-version (0 or 1). Every
// deployment's entry carries the kernel argument
// otree=/otree/boot.<B>/<os>/<bootcsum>/<n>, where n counts the deployments
// with the same os and kernel in boot order. The entries of the current boot
// version are the list of deployments: their order (by k, highest first) is
// the boot order, index 0 boots by default.
//
// # Switching
//
// A change of the deployment list writes the other boot version beside the
// current one (loader.<1-B> entries and otree/boot.<1-B>.0 links), makes it
// durable, then renames one symlink, boot/loader, to point at it. When only
// the order of deployments sharing one kernel changes, the entries stay the
// same and only otree/boot.<B> is renamed to the other sub-version. A crash
// at any point leaves the old or the new state, each complete; what a crash
// leaves behind is removed by Cleanup.
package deploy
