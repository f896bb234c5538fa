#!/bin/bash
# dracut module: puts otree-prepare-root and its unit into the initramfs.
# The binary is taken from /usr/lib/otree/otree-prepare-root, or from
# $OTREE_PREPARE_ROOT (for tests).

otree_prepare_root() {
    echo "${OTREE_PREPARE_ROOT:-/usr/lib/otree/otree-prepare-root}"
}

check() {
    # Only when asked for (dracut --add otree, or add_dracutmodules+=" otree ").
    require_binaries "$(otree_prepare_root)" || return 1
    return 255
}

depends() {
    echo systemd
}

install() {
    inst_binary "$(otree_prepare_root)" /usr/lib/otree/otree-prepare-root
    inst_simple "$moddir/otree-prepare-root.service" "$systemdsystemunitdir/otree-prepare-root.service"
    $SYSTEMCTL -q --root "$initdir" add-wants initrd-root-fs.target otree-prepare-root.service
}
