#!/usr/bin/env bash
# The reference point of issue 7: the dual-ISP run as a shell suite would write it — one `ip`,
# `sysctl` or `iptables-restore` process per step, a python3 server and client, 200 TCP flows
# (one request/response each) — without capture or judging. `harness bench` is measured
# against its wall time:
#
#   time ci/bench-shell/dual-isp.sh          # as root
#
# Everything it creates is named hx-ref-* and removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
flows=${1:-200}
p=hx-ref-$$
ns() { echo "$p-$1"; }
cleanup() { for n in saturn jupiter isp1 isp2 internet neptune; do ip netns del "$(ns $n)" 2>/dev/null || true; done; }
trap cleanup EXIT
for n in saturn jupiter isp1 isp2 internet neptune; do ip netns add "$(ns $n)"; ip -n "$(ns $n)" link set lo up; done
link() { # A:ifa addr B:ifb addr
    local a=${1%%:*} ia=${1##*:} b=${3%%:*} ib=${3##*:}
    ip link add tmpa$$ netns "$(ns $a)" type veth peer name tmpb$$ netns "$(ns $b)"
    ip -n "$(ns $a)" link set dev tmpa$$ name "$ia"; ip -n "$(ns $b)" link set dev tmpb$$ name "$ib"
    ip -n "$(ns $a)" addr add "$2" dev "$ia"; ip -n "$(ns $b)" addr add "$4" dev "$ib"
    ip -n "$(ns $a)" link set dev "$ia" up; ip -n "$(ns $b)" link set dev "$ib" up
}
link saturn:eth0 192.168.157.3/24 jupiter:eth0 192.168.157.253/24
link jupiter:eth1 10.37.1.253/24 isp1:cust 10.37.1.254/24
link jupiter:eth2 10.37.2.253/24 isp2:cust 10.37.2.254/24
link isp1:up 10.0.1.2/30 internet:isp1 10.0.1.1/30
link isp2:up 10.0.2.2/30 internet:isp2 10.0.2.1/30
link internet:dc 172.16.1.1/24 neptune:eth0 172.16.1.100/24
for n in jupiter isp1 isp2 internet; do ip netns exec "$(ns $n)" sysctl -qw net.ipv4.ip_forward=1; done
ip -n "$(ns saturn)" route add default via 192.168.157.253
ip -n "$(ns jupiter)" route add default via 10.37.1.254
ip -n "$(ns isp1)" route add default via 10.0.1.1
ip -n "$(ns isp2)" route add default via 10.0.2.1
ip -n "$(ns internet)" route add 10.37.1.0/24 via 10.0.1.2
ip -n "$(ns internet)" route add 10.37.2.0/24 via 10.0.2.2
ip -n "$(ns neptune)" route add default via 172.16.1.1
ip netns exec "$(ns jupiter)" iptables-restore < scenarios/dual-isp/jupiter.iptables
sed -e 's/rt_link1/251/g' -e 's/rt_link2/252/g' scenarios/dual-isp/jupiter.ip | ip -n "$(ns jupiter)" -batch -
ip netns exec "$(ns neptune)" python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("172.16.1.100", 80)); s.listen(1024); print("ready", flush=True)
while True:
    c, _ = s.accept(); c.sendall(c.recv(64).replace(b"HXQ", b"HXR")); c.close()
' > "/tmp/$p.ready" &
server=$!
while ! grep -q ready "/tmp/$p.ready" 2>/dev/null; do sleep 0.001; done
rm -f "/tmp/$p.ready"
ip netns exec "$(ns saturn)" python3 -c '
import socket, sys
n = int(sys.argv[1]); done = 0
for i in range(1, n + 1):
    c = socket.create_connection(("172.16.1.100", 80), timeout=2)
    c.sendall(b"HXQ %d 1\n" % i)
    if c.recv(64).startswith(b"HXR"): done += 1
    c.close()
print(f"{done} of {n} flows completed")
' "$flows"
kill "$server"
wait "$server" 2>/dev/null || true
