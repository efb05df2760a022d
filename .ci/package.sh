#!/usr/bin/env bash
# Builds the Debian package attache_<version>_amd64.deb with tauri's bundler (deb only: the
# AppImage bundler downloads linuxdeploy from GitHub at build time, impossible offline).
#   .ci/package.sh           release build (`make package`)
#   .ci/package.sh debug     bundles the debug build the tests already made (CI)
# Prints the path of the .deb on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
profile="${1:-release}"
case "$profile" in
  release) cargo build --release -p attache-desktop -p attache-cli; debug_flag=() ;;
  debug) cargo build -p attache-desktop -p attache-cli; debug_flag=(--debug) ;;
  *) echo "usage: $0 [release|debug]" >&2; exit 2 ;;
esac
root="$PWD"
target="$root/target/$profile"
gen="$target/package"
rm -rf "$gen" && mkdir -p "$gen"

cp packaging/lintian-overrides "$gen/lintian-overrides"
if [ "$profile" = debug ]; then
  cat packaging/lintian-overrides-debug >> "$gen/lintian-overrides"
fi

for page in attache attache-desktop; do
  gzip -9n -c "packaging/man/$page.1" > "$gen/$page.1.gz"
done

# Depends: the packages that hold the libraries both programs link directly (what
# dpkg-shlibdeps would find; tauri adds the webview's and the tray's on its own).
needed=$(for bin in "$target/attache-desktop" "$target/attache"; do
  objdump -p "$bin" | awk '/NEEDED/ {print $2}'
  done | sort -u)
linked=$(ldd "$target/attache-desktop" "$target/attache")
depends=()
for lib in $needed; do
  # The dynamic loader is libc6's, which the C library's line already brings.
  case "$lib" in ld-linux*) continue ;; esac
  path=$(awk -v l="$lib" '$1 == l && !seen++ {print $3}' <<< "$linked")
  [ -n "$path" ] || { echo "package: $lib not found by ldd" >&2; exit 1; }
  real=$(readlink -f "$path")
  pkg=$(dpkg -S "$real" 2>/dev/null || dpkg -S "${real#/usr}" 2>/dev/null || true)
  [ -n "$pkg" ] || { echo "package: no Debian package holds $real" >&2; exit 1; }
  pkg="${pkg%%:*}"
  # The webview's and the toolkit's packages are in tauri's own list already.
  case "$pkg" in libwebkit2gtk-4.1-0|libgtk-3-0) continue ;; esac
  depends+=("$pkg")
done
depends_json=$(printf '%s\n' "${depends[@]}" | sort -u | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read().split()))')

# The package and its desktop file need an ASCII name (dpkg refuses "attaché", tauri issue
# #14366): the product name is overridden here only; the menu entry still says "Attaché".
cat > "$gen/overlay.json" <<JSON
{
  "productName": "attache",
  "bundle": {
    "linux": {
      "deb": {
        "depends": $depends_json,
        "files": {
          "/usr/bin/attache": "$target/attache",
          "/usr/share/doc/attache/copyright": "$root/packaging/copyright",
          "/usr/share/lintian/overrides/attache": "$gen/lintian-overrides",
          "/usr/share/man/man1/attache.1.gz": "$gen/attache.1.gz",
          "/usr/share/man/man1/attache-desktop.1.gz": "$gen/attache-desktop.1.gz"
        }
      }
    }
  }
}
JSON

(cd src-tauri && "$root/ui/node_modules/.bin/tauri" bundle "${debug_flag[@]}" --bundles deb \
  --config "$gen/overlay.json" --ci >&2)
version=$(awk -F'"' '/^version *=/ {print $2; exit}' Cargo.toml)
deb="$target/bundle/deb/attache_${version}_amd64.deb"
[ -f "$deb" ] || { echo "package: $deb was not made" >&2; exit 1; }
# The bundler compresses with gzip; the release package is repacked with xz -9 as Debian's
# own packages are (27 MiB -> 12 MiB). The debug one stays gzip: xz on its 200 MB of
# unstripped programs would cost CI minutes for nothing.
if [ "$profile" = release ]; then
  repack="$gen/repack"
  rm -rf "$repack"
  dpkg-deb -R "$deb" "$repack"
  dpkg-deb -Zxz -z9 --root-owner-group --build "$repack" "$deb" >&2
  rm -rf "$repack"
fi
echo "$deb"
