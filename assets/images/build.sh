#!/usr/bin/env bash
# Builds a small container image that runs torpor's built-in handlers: the torpor binary and
# the shared libraries it links, on no base image, so nothing is pulled from a registry.
#
#   assets/images/build.sh                     build target/release/torpor and import it as
#                                              localhost/torpor-demo:latest
#   assets/images/build.sh --tar FILE          only write the image's root filesystem as a tar
#
# Options:
#   --program PATH   the program to put at /torpor (default: target/release/torpor, built
#                    with cargo when missing)
#   --tag NAME       the image name (default: localhost/torpor-demo:latest)
#   --engine NAME    podman or docker (default: whichever is installed, podman first)
#   --url ADDRESS    the engine's API socket, e.g. unix:///run/podman/podman.sock; passed as
#                    podman --url or docker -H (default: the engine's own default)
#   --tar FILE       write the root filesystem to FILE and import nothing
#
# The image runs `/torpor object-host counter` and listens on port 9333; a class chooses
# another built-in with command = ["/torpor", "object-host", "kv"].
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
program=""
tag="localhost/torpor-demo:latest"
engine=""
url=""
tar_out=""

while [ $# -gt 0 ]; do
    case "$1" in
        --program) program=$2; shift 2 ;;
        --tag) tag=$2; shift 2 ;;
        --engine) engine=$2; shift 2 ;;
        --url) url=$2; shift 2 ;;
        --tar) tar_out=$2; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

if [ -z "$program" ]; then
    program=$repo/target/release/torpor
    if [ ! -x "$program" ]; then
        (cd "$repo" && cargo build --release)
    fi
fi
if [ ! -x "$program" ]; then
    echo "build.sh: $program is not an executable file" >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
mkdir -p "$rootfs/tmp" "$rootfs/etc"
chmod 1777 "$rootfs/tmp"
echo "root:x:0:0:root:/:/torpor" >"$rootfs/etc/passwd"
echo "root:x:0:" >"$rootfs/etc/group"

# The program, without debug information, and every shared library it loads.
if command -v strip >/dev/null; then
    strip -o "$rootfs/torpor" "$program"
else
    cp "$program" "$rootfs/torpor"
fi
chmod 0755 "$rootfs/torpor"
libraries=$(ldd "$program" 2>/dev/null | grep -o '/[^ ]*' || true)
for library in $libraries; do
    mkdir -p "$rootfs$(dirname "$library")"
    cp -L "$library" "$rootfs$library"
done

tarball=${tar_out:-$work/rootfs.tar}
tar --numeric-owner --owner=0 --group=0 -C "$rootfs" -cf "$tarball" .
if [ -n "$tar_out" ]; then
    echo "wrote $tar_out ($(du -h "$tar_out" | cut -f1))"
    exit 0
fi

if [ -z "$engine" ]; then
    if command -v podman >/dev/null; then engine=podman
    elif command -v docker >/dev/null; then engine=docker
    else
        echo "build.sh: neither podman nor docker is installed; use --tar FILE and import it yourself" >&2
        exit 1
    fi
fi
case "$engine" in
    podman) cli=(podman ${url:+--url "$url"}) ;;
    docker) cli=(docker ${url:+-H "$url"}) ;;
    *) echo "build.sh: --engine must be podman or docker, not $engine" >&2; exit 2 ;;
esac

"${cli[@]}" import \
    --change 'CMD ["/torpor", "object-host", "counter"]' \
    --change 'EXPOSE 9333' \
    --change 'ENV TORPOR_LISTEN=0.0.0.0:9333' \
    "$tarball" "$tag" >/dev/null
echo "built $tag with $engine ($(du -h "$tarball" | cut -f1) uncompressed)"
