#!/bin/sh
# tests/package/deps.sh (`make package-deps`): what the package checks need
# beyond `make deps`, from Debian's archive only. musl-check builds libyaml
# and cmocka from their Debian source packages, so apt needs a deb-src entry:
# one is added, for the same archive and suite as the machine's own, only
# when the machine has none.
set -eu
PACKAGE_DEBS="debhelper lintian mmdebstrap systemd-container podman buildah runc \
musl-tools shellcheck cmake dpkg-dev"

if ! grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/; then
	uri=$(grep -rhsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1)
	[ -n "$uri" ] || uri=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
	[ -n "$uri" ] || { echo "package-deps: no Debian archive found in apt's sources" >&2; exit 1; }
	# shellcheck disable=SC1091 # the machine's own file
	suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
	cat > /etc/apt/sources.list.d/sipalgd-deb-src.sources <<SRC
Types: deb-src
URIs: $uri
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	echo "package-deps: added /etc/apt/sources.list.d/sipalgd-deb-src.sources ($uri $suite)"
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # a list of package names
apt-get install -y -qq --no-install-recommends $PACKAGE_DEBS
