# Sourced by deploy/podman/*.sh and deploy/test_live.sh (POSIX sh, from the
# repository root): the podman settings a VM like the test machines needs.
#   . deploy/podman/env.sh
# - The OCI runtime is runc: crun refuses hybrid cgroups ("cgroups in hybrid
#   mode not supported").
# - Default ulimits no higher than this shell's hard limits: podman asks for
#   1,048,576 open files and processes, and without CAP_SYS_RESOURCE runc's
#   setrlimit fails ("error setting rlimit type 7: operation not permitted").
# - netavark (with aardvark-dns) when installed: CNI's dnsname plugin gives no
#   DNS on `internal` networks, which the compose file's broker network is.
# - BUILDAH_FORMAT=docker: the OCI image format has no HEALTHCHECK.
# They go to build/podman/containers.conf, named by CONTAINERS_CONF (which
# replaces every other containers.conf). A CONTAINERS_CONF already set is kept.
# On a machine where podman runs with its defaults none of this is needed.

# Hard limits as /proc tells them (dash's ulimit has no -u).
MQTLS_NOFILE=$(awk '/^Max open files/ { print $5 }' /proc/self/limits)
[ "$MQTLS_NOFILE" = unlimited ] && MQTLS_NOFILE=1048576
# RLIMIT_NPROC counts a uid's processes host-wide; each container here runs a
# handful. runc could not set more than 32768 on the test VM, whatever the
# shell's own limit said, so stay well below that.
MQTLS_NPROC=$(awk '/^Max processes/ { print $4 }' /proc/self/limits)
{ [ "$MQTLS_NPROC" = unlimited ] || [ "$MQTLS_NPROC" -gt 4096 ]; } && MQTLS_NPROC=4096

if [ -z "${CONTAINERS_CONF:-}" ]; then
	_pc_dir=${MQTLS_PODMAN_DIR:-$(pwd)/build/podman}
	mkdir -p "$_pc_dir"
	_pc_runtime=runc
	command -v runc >/dev/null 2>&1 || _pc_runtime=crun
	{
		echo "# Written by deploy/podman/env.sh; see there."
		echo "[containers]"
		echo "default_ulimits = [\"nofile=$MQTLS_NOFILE:$MQTLS_NOFILE\", \"nproc=$MQTLS_NPROC:$MQTLS_NPROC\"]"
		echo
		echo "[engine]"
		echo "runtime = \"$_pc_runtime\""
		echo "cgroup_manager = \"cgroupfs\""
		echo "events_logger = \"file\""
		if [ -x /usr/lib/podman/netavark ] || command -v netavark >/dev/null 2>&1; then
			echo
			echo "[network]"
			echo "network_backend = \"netavark\""
		fi
	} >"$_pc_dir/containers.conf"
	CONTAINERS_CONF=$_pc_dir/containers.conf
	export CONTAINERS_CONF
	unset _pc_dir _pc_runtime
fi
BUILDAH_FORMAT=docker
export BUILDAH_FORMAT

# The names the Dockerfile and deploy/podman/image.sh use.
MQTLS_BASE_IMAGE=${MQTLS_BASE_IMAGE:-docker.io/library/debian:12-slim}
MQTLS_IMAGE=${MQTLS_IMAGE:-localhost/mqtls:0.1.0}
