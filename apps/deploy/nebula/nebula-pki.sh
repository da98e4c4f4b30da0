#!/bin/sh
# nebula-pki.sh: issue the Nebula certificates of a Lintel deployment with
# nebula-cert, from the hosts file "lintelctl nebula" writes.
#
#   nebula-pki.sh ca CADIR [NAME] [DURATION]
#       Create the overlay's CA: CADIR/ca.crt and CADIR/ca.key (mode 0600).
#       NAME defaults to "Lintel", DURATION to 87600h (10 years). Refuses to
#       replace an existing CA. Keep CADIR offline: whoever holds ca.key can
#       join any host to the overlay, in any group.
#
#   nebula-pki.sh sign [-f] [-d DURATION] CADIR OUTDIR [HOST...]
#       Sign a certificate for every host of OUTDIR/hosts (or only the HOSTs
#       named), with the name, address and groups that file gives it, into
#       OUTDIR/<host>/host.crt and host.key, and copy ca.crt beside them.
#       A host that already has a certificate is left alone unless -f is
#       given (rotation). DURATION defaults to nebula-cert's: until one
#       second before the CA expires.
#
#   nebula-pki.sh device CADIR OUTDIR NAME ADDRESS/PREFIX GROUP[,GROUP...]
#       Sign a host that is not in the hosts file, such as a device or an
#       operator's machine allowed into a site (group site-<org>-<edge>).
#
# NEBULA_CERT names the nebula-cert binary (default: nebula-cert in PATH).
set -eu

NEBULA_CERT=${NEBULA_CERT:-nebula-cert}

die() {
	printf 'nebula-pki.sh: %s\n' "$*" >&2
	exit 1
}

usage() {
	sed -n '2,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
	exit 2
}

# sign_one CADIR OUTDIR NAME ADDRESS GROUPS FORCE DURATION
sign_one() {
	dir=$2/$3
	if [ -e "$dir/host.crt" ] || [ -e "$dir/host.key" ]; then
		if [ "$6" != 1 ]; then
			printf '%s: already signed, kept (use -f to issue a new certificate)\n' "$3"
			return 0
		fi
		rm -f "$dir/host.crt" "$dir/host.key"
	fi
	mkdir -p "$dir"
	if [ -n "$7" ]; then
		(umask 077 && "$NEBULA_CERT" sign -ca-crt "$1/ca.crt" -ca-key "$1/ca.key" \
			-name "$3" -ip "$4" -groups "$5" -duration "$7" \
			-out-crt "$dir/host.crt" -out-key "$dir/host.key")
	else
		(umask 077 && "$NEBULA_CERT" sign -ca-crt "$1/ca.crt" -ca-key "$1/ca.key" \
			-name "$3" -ip "$4" -groups "$5" \
			-out-crt "$dir/host.crt" -out-key "$dir/host.key")
	fi
	chmod 0644 "$dir/host.crt"
	cp "$1/ca.crt" "$dir/ca.crt"
	printf '%s: signed %s groups %s\n' "$3" "$4" "$5"
}

# listed NAME [HOST...]: whether NAME is among the HOSTs (or none given).
listed() {
	name=$1
	shift
	[ $# -eq 0 ] && return 0
	for h in "$@"; do
		[ "$h" = "$name" ] && return 0
	done
	return 1
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
ca)
	if [ $# -lt 1 ] || [ $# -gt 3 ]; then usage; fi
	cadir=$1
	name=${2:-Lintel}
	duration=${3:-87600h}
	[ -e "$cadir/ca.key" ] && die "$cadir/ca.key exists: refusing to replace the overlay's CA"
	mkdir -p "$cadir"
	chmod 0700 "$cadir"
	(umask 077 && "$NEBULA_CERT" ca -name "$name" -duration "$duration" \
		-out-crt "$cadir/ca.crt" -out-key "$cadir/ca.key")
	chmod 0644 "$cadir/ca.crt"
	printf 'CA %s: %s/ca.crt, key %s/ca.key\n' "$name" "$cadir" "$cadir"
	;;
sign)
	force=0
	duration=
	while getopts fd: opt; do
		case $opt in
		f) force=1 ;;
		d) duration=$OPTARG ;;
		*) usage ;;
		esac
	done
	shift $((OPTIND - 1))
	[ $# -ge 2 ] || usage
	cadir=$1
	outdir=$2
	shift 2
	[ -r "$cadir/ca.key" ] || die "$cadir/ca.key: no CA key (run: nebula-pki.sh ca $cadir)"
	[ -r "$outdir/hosts" ] || die "$outdir/hosts: no hosts file (run: lintelctl nebula --out $outdir ...)"
	for h in "$@"; do
		awk -v h="$h" '$1 == h { found = 1 } END { exit !found }' "$outdir/hosts" || die "host $h is not in $outdir/hosts"
	done
	while read -r name addr groups rest; do
		case $name in '' | '#'*) continue ;; esac
		if [ -z "$addr" ] || [ -z "$groups" ] || [ -n "$rest" ]; then
			die "$outdir/hosts: bad line for $name: want NAME ADDRESS/PREFIX GROUPS"
		fi
		listed "$name" "$@" || continue
		sign_one "$cadir" "$outdir" "$name" "$addr" "$groups" "$force" "$duration"
	done <"$outdir/hosts"
	;;
device)
	[ $# -eq 5 ] || usage
	[ -r "$1/ca.key" ] || die "$1/ca.key: no CA key"
	sign_one "$1" "$2" "$3" "$4" "$5" 0 ""
	;;
*)
	usage
	;;
esac
