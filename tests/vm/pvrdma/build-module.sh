#!/bin/bash
# tests/vm/pvrdma/build-module.sh - (host, root) build vmw_pvrdma.ko for the bed's
# kernel.  Debian's kernel has CONFIG_INFINIBAND_VMWARE_PVRDMA unset, so the driver
# is built out of tree from the matching linux-source-6.1 package against
# linux-headers-$KVER.  Output: $OUT/mod/vmw_pvrdma.ko (default OUT=build/pvrdma-probe).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
OUT=${OUT:-$ROOT/build/pvrdma-probe}
VM_DIR=${UMX_VM_DIR:-/var/cache/umad-mux/vm}
KVER=$(cat "$VM_DIR/KVER")
[ -s "$OUT/mod/vmw_pvrdma.ko" ] && modinfo -F vermagic "$OUT/mod/vmw_pvrdma.ko" | grep -q "^$KVER " && {
	echo "build-module: $OUT/mod/vmw_pvrdma.ko is current"; exit 0; }
[ -d /usr/src/linux-headers-$KVER ] || DEBIAN_FRONTEND=noninteractive apt-get install -y "linux-headers-$KVER"
# the source package whose version matches the headers
ver=$(dpkg-query -W -f '${Version}' "linux-headers-$KVER")
mkdir -p "$OUT/src" "$OUT/mod"
cd "$OUT/src"
if [ ! -d linux-source-6.1/drivers/infiniband/hw/vmw_pvrdma ]; then
	apt-get download "linux-source-6.1=$ver"
	dpkg-deb --fsys-tarfile linux-source-6.1_*_all.deb | tar x ./usr/src/linux-source-6.1.tar.xz
	tar xJf usr/src/linux-source-6.1.tar.xz linux-source-6.1/drivers/infiniband/hw/vmw_pvrdma
	rm -rf usr linux-source-6.1_*_all.deb
fi
cp linux-source-6.1/drivers/infiniband/hw/vmw_pvrdma/* "$OUT/mod/"
make -C "/usr/src/linux-headers-$KVER" M="$OUT/mod" CONFIG_INFINIBAND_VMWARE_PVRDMA=m modules
ls -l "$OUT/mod/vmw_pvrdma.ko"
