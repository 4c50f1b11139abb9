#!/usr/bin/env bash
# Makes the corpus captures under raw/: real stateful programs from Debian's
# packages, each with its data directory on a small file system on a loop
# device, broken by a real storage fault while it writes.
#
#   usage: capture.sh [PROGRAM [FAULT ...]]      (no argument: every capture)
#   PROGRAM: postgresql mariadb redis etcd prometheus nginx sqlite
#   FAULT:   healthy readonly full eio eio-continue xfs-shutdown missing wiped (+ program variants)
#
# Needs root, loop devices, /dev/fuse, Debian 12. Only loopback addresses are
# used. Not run by CI. Re-runnable: every run starts from a fresh volume and
# tears it down; raw/<program>-<fault>.log (+ .kernel.log) are overwritten.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
RAW=$HERE/raw
W=/tmp/fl
LOGS=$W/logs
mkdir -p "$RAW" "$W" "$LOGS"
chmod 1777 "$LOGS"

install_packages() {
  command -v mariadbd >/dev/null && command -v etcd >/dev/null && [ -x /usr/lib/postgresql/15/bin/postgres ] \
    && command -v xfs_io >/dev/null && command -v prometheus >/dev/null && command -v nginx >/dev/null \
    && [ -f /usr/lib/python3/dist-packages/fusepy.py ] && command -v redis-server >/dev/null && return 0
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 mariadb-server redis-server \
    etcd-server etcd-client prometheus nginx-light xfsprogs fuse3 python3-fusepy python3-yaml curl e2fsprogs
}

# ---------------------------------------------------------------- FUSE layer
# A passthrough FUSE file system holding the loop device's backing file. While
# the switch file exists, every read/write/fsync/flush of it fails with EIO, as
# a failing disk (or a failing network block store) would.
write_eiofs() {
  cat > $W/eiofs.py <<'EOF'
import errno, os, sys
sys.path.insert(0, "/usr/lib/python3/dist-packages")
from fusepy import FUSE, FuseOSError, Operations

class EioFS(Operations):
    def __init__(self, root, switch):
        self.root, self.switch = root, switch
    def _p(self, path): return os.path.join(self.root, path.lstrip("/"))
    def _fail(self):
        if os.path.exists(self.switch): raise FuseOSError(errno.EIO)
    def getattr(self, path, fh=None):
        st = os.lstat(self._p(path))
        return {k: getattr(st, k) for k in ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink", "st_size", "st_uid")}
    def readdir(self, path, fh): return [".", ".."] + os.listdir(self._p(path))
    def open(self, path, flags): return os.open(self._p(path), flags)
    def create(self, path, mode, fi=None): return os.open(self._p(path), os.O_WRONLY | os.O_CREAT, mode)
    def read(self, path, size, offset, fh):
        self._fail(); return os.pread(fh, size, offset)
    def write(self, path, data, offset, fh):
        self._fail(); return os.pwrite(fh, data, offset)
    def truncate(self, path, length, fh=None):
        with open(self._p(path), "r+") as f: f.truncate(length)
    def flush(self, path, fh): self._fail(); return 0
    def fsync(self, path, datasync, fh):
        self._fail(); os.fsync(fh); return 0
    def release(self, path, fh): os.close(fh); return 0
    def statfs(self, path):
        s = os.statvfs(self._p(path))
        return {k: getattr(s, k) for k in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")}

if __name__ == "__main__":
    FUSE(EioFS(sys.argv[1], sys.argv[3]), sys.argv[2], foreground=True, direct_io=True)
EOF
}

# ---------------------------------------------------------------- volumes
# vol_up NAME SIZE_MB FSTYPE [eio]: sets LOOP, MNT, VDIR, FUSEPID
vol_up() {
  local name=$1 size=$2 fs=$3 eio=${4:-} img
  [ "$fs" = xfs ] && [ "$size" -lt 320 ] && size=320   # mkfs.xfs wants > 300 MB
  VDIR=$W/vol-$name
  vol_down_dir "$VDIR"
  rm -rf "$VDIR"; mkdir -p "$VDIR/mnt"
  FUSEPID=
  if [ -n "$eio" ]; then
    write_eiofs
    mkdir -p "$VDIR/back" "$VDIR/fuse"
    truncate -s "${size}M" "$VDIR/back/disk.img"
    /usr/bin/python3 $W/eiofs.py "$VDIR/back" "$VDIR/fuse" "$VDIR/eio-switch" >"$VDIR/fuse.log" 2>&1 &
    FUSEPID=$!; echo $FUSEPID > "$VDIR/fuse.pid"
    for _ in $(seq 50); do [ -f "$VDIR/fuse/disk.img" ] && break; sleep 0.1; done
    img=$VDIR/fuse/disk.img
  else
    img=$VDIR/disk.img
    truncate -s "${size}M" "$img"
  fi
  LOOP=$(losetup -f --show "$img"); echo "$LOOP" > "$VDIR/loop"
  if [ "$fs" = xfs ]; then
    mkfs.xfs -q -f "$LOOP"; mount "$LOOP" "$VDIR/mnt"
  else
    mkfs.ext4 -q -F "$LOOP"; mount -o "errors=${EXT4_ERRORS:-remount-ro}" "$LOOP" "$VDIR/mnt"
  fi
  MNT=$VDIR/mnt
}
vol_down_dir() {
  local d=$1
  [ -d "$d" ] || return 0
  umount -l "$d/mnt" 2>/dev/null
  [ -f "$d/loop" ] && losetup -d "$(cat "$d/loop")" 2>/dev/null
  rm -f "$d/eio-switch"
  if [ -f "$d/fuse.pid" ]; then
    fusermount -u -z "$d/fuse" 2>/dev/null || umount -l "$d/fuse" 2>/dev/null
    kill "$(cat "$d/fuse.pid")" 2>/dev/null
    rm -f "$d/fuse.pid"
  fi
  rm -f "$d/loop"
}
vol_down() { vol_down_dir "$VDIR"; rm -rf "$VDIR"; }

# fill the file system completely (root also takes the reserved blocks)
fill_up() { dd if=/dev/zero of="$MNT/filler" bs=1M status=none 2>/dev/null; sync -f "$MNT" 2>/dev/null; df -h "$MNT" | tail -1; }

inject() {
  local fault=$1
  echo "$(date -u +%FT%T.%3NZ) inject $fault" >> "$LOGS/timeline"
  case $fault in
    readonly) echo 1 > "/sys/fs/ext4/$(basename "$LOOP")/trigger_fs_error" ;;
    eio|eio-continue) touch "$VDIR/eio-switch"; echo 3 > /proc/sys/vm/drop_caches ;;
    xfs-shutdown) xfs_io -x -c shutdown "$MNT" ;;
    full) fill_up ;;
  esac
}

KMARK=0
kmark() { KMARK=$(dmesg | wc -l); }
kdump() { # keep the kernel lines of this run that speak of our device or of I/O
  dmesg | tail -n +$((KMARK + 1)) | grep -E "$(basename "$LOOP")([^0-9]|\$)" > "$RAW/$1.kernel.log" || true
  [ -s "$RAW/$1.kernel.log" ] || rm -f "$RAW/$1.kernel.log"
}

killtree() { local c; for c in $(pgrep -P "$1"); do killtree "$c"; done; kill "$1" 2>/dev/null; }

wait_gone() { # pid seconds
  local pid=$1 t=$2
  for _ in $(seq $((t * 5))); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null; return 1
}

# Generic driver. Per program: P_size P_fs P_init P_start P_load P_stop P_break
# P_start must leave the server's pid in SPID and log to $LOG.
capture() {
  local prog=$1 fault=$2 fs=ext4 eio= size
  local name=$prog-$fault
  LOG=$LOGS/$name.log; : > "$LOG"; chmod 666 "$LOG"
  echo "=== $name $(date -u +%FT%T)" | tee -a "$LOGS/timeline"
  [ "$fault" = xfs-shutdown ] && fs=xfs
  [ "$fault" = eio ] && eio=1
  EXT4_ERRORS=remount-ro
  # eio-continue: the same failing device under an ext4 mounted errors=continue,
  # so that the program itself gets EIO instead of a read-only file system
  [ "$fault" = eio-continue ] && { eio=1; EXT4_ERRORS=continue; }
  size=$(${prog}_size "$fault")
  vol_up "$prog" "$size" "$fs" $eio
  ${prog}_init
  case $fault in missing*) ${prog}_break "$fault" ;; esac
  kmark
  ${prog}_start
  ( ${prog}_load ) > "$LOGS/$name.client.log" 2>&1 &
  local lpid=$!
  if [ "$fault" = healthy ]; then
    sleep 20
  elif [[ "$fault" == missing* ]]; then
    sleep 15
  else
    sleep 10
    if declare -F "${prog}_inject_$fault" >/dev/null; then "${prog}_inject_$fault"; else inject "$fault"; fi
    sleep 25
  fi
  ${prog}_stop
  if [ "$fault" != healthy ]; then
    # what a crash-looping pod does: start again on the same volume
    echo "$(date -u +%FT%T.%3NZ) restart" >> "$LOGS/timeline"
    ${prog}_start
    sleep 15
    ${prog}_stop
  fi
  killtree "$lpid"; wait "$lpid" 2>/dev/null
  cp "$LOG" "$RAW/$name.log"
  kdump "$name"
  vol_down
}

# ================================================================ postgresql
PGBIN=/usr/lib/postgresql/15/bin
PGPORT=55432
postgresql_size() { [ "$1" = full ] && echo 64 || echo 512; }
postgresql_inject_full() { :; }   # the 64 MB volume is filled by pgbench's own writes
postgresql_init() {
  D=$MNT/pgdata; mkdir -p "$D"; chown -R postgres:postgres "$MNT"
  runuser -u postgres -- $PGBIN/initdb -D "$D" -A trust >/dev/null
}
postgresql_break() {
  case $1 in
    missing) find "$D" -mindepth 1 -delete ;;              # empty data directory
    missing-pgcontrol) rm -f "$D/global/pg_control" ;;
    missing-wal) rm -f "$D"/pg_wal/0000* ;;
  esac
}
postgresql_start() {
  runuser -u postgres -- $PGBIN/pg_ctl -D "$D" -l "$LOG" -w -t 20 \
    -o "-p $PGPORT -k /tmp -c listen_addresses=127.0.0.1" start >> "$LOG" 2>&1
  SPID=$(head -1 "$D/postmaster.pid" 2>/dev/null)
}
postgresql_load() {
  export PGHOST=127.0.0.1 PGPORT=$PGPORT PGUSER=postgres
  pgbench -i -s 5 postgres
  timeout 50 pgbench -c 2 -T 45 postgres
  for _ in $(seq 30); do psql -c 'create table if not exists t(x text); insert into t select repeat($$x$$,1000) from generate_series(1,2000); checkpoint;' postgres; sleep 1; done
}
postgresql_stop() {
  runuser -u postgres -- timeout 25 $PGBIN/pg_ctl -D "$D" -m fast -w -t 20 stop >/dev/null 2>&1 \
    || runuser -u postgres -- timeout 10 $PGBIN/pg_ctl -D "$D" -m immediate stop >/dev/null 2>&1
  pkill -u postgres -f "$PGBIN/postgres -D $D" 2>/dev/null; sleep 1
}

# ================================================================ mariadb
MYSOCK=$LOGS/mysqld.sock
mariadb_size() { echo 256; }
mariadb_init() {
  D=$MNT/mysql; mkdir -p "$D"; chown -R mysql:mysql "$MNT"
  mariadb-install-db --user=mysql --datadir="$D" --skip-test-db --auth-root-authentication-method=socket >/dev/null 2>&1
}
mariadb_break() {
  case $1 in
    missing) find "$D" -mindepth 1 -delete ;;
    missing-ibdata) rm -f "$D/ibdata1" ;;
  esac
}
mariadb_start() {
  mariadbd --no-defaults --user=mysql --datadir="$D" --socket=$MYSOCK --port=33306 --bind-address=127.0.0.1 \
    --log-error="$LOG" --pid-file=$LOGS/mysqld.pid --innodb-buffer-pool-size=32M --innodb-log-file-size=16M >> "$LOG" 2>&1 &
  SPID=$!
  for _ in $(seq 30); do mariadb-admin -S $MYSOCK ping >/dev/null 2>&1 && break; sleep 0.5; done
}
mariadb_load() {
  local my="mariadb -S $MYSOCK -uroot"
  $my -e 'create database if not exists app; create table if not exists app.t(id int auto_increment primary key, v text) engine=innodb'
  local end=$((SECONDS + 75))
  while [ $SECONDS -lt $end ]; do
    $my -D app -e "insert into app.t(v) select repeat('x',4000) from seq_1_to_500; flush tables;" 2>&1 | tail -2
    sleep 0.3
  done
}
mariadb_stop() {
  timeout 25 mariadb-admin -S $MYSOCK shutdown >/dev/null 2>&1
  wait_gone "$SPID" 20 || true
  wait "$SPID" 2>/dev/null
}

# ================================================================ redis
redis_size() { echo 256; }
redis_init() { D=$MNT/redis; mkdir -p "$D"; chown -R redis:redis "$MNT"; }
redis_break() { # an AOF manifest whose base file is gone
  runuser -u redis -- redis-server --port 16379 --bind 127.0.0.1 --dir "$D" --appendonly yes --daemonize no --logfile /dev/null &
  local p=$!; sleep 2; redis-cli -p 16379 set k v >/dev/null; redis-cli -p 16379 shutdown >/dev/null 2>&1; wait $p
  rm -f "$D"/appendonlydir/*.base.rdb
}
redis_start() {
  runuser -u redis -- redis-server --port 16379 --bind 127.0.0.1 --dir "$D" --appendonly yes \
    --appendfsync always --save "5 1" --daemonize no --logfile "$LOG" &
  SPID=$!; sleep 2
}
redis_load() {
  timeout 80 redis-benchmark -p 16379 -t set,lpush -n 100000000 -d 2000 -r 1000000 -c 4 -q >/dev/null &
  for _ in $(seq 40); do redis-cli -p 16379 bgsave; sleep 2; done
}
redis_stop() { # SIGTERM, then SIGKILL after 15 s, as kubelet does (redis 7 refuses to exit when its final save fails)
  pkill -TERM -u redis -x redis-server; wait_gone "$SPID" 15 || true
  pkill -KILL -u redis -x redis-server; wait "$SPID" 2>/dev/null; }

# ================================================================ etcd
etcd_size() { echo 300; }
etcd_init() { D=$MNT/etcd; mkdir -p "$D"; chmod 700 "$D"; chown -R etcd:etcd "$MNT"; }
etcd_break() { # a member whose WAL is gone, the snapshot db kept
  etcd_start; sleep 3
  ETCDCTL_API=3 etcdctl --endpoints 127.0.0.1:23790 put k v >/dev/null
  etcd_stop; : > "$LOG"
  rm -rf "$D/member/wal"
}
etcd_start() {
  runuser -u etcd -- etcd --name fl --data-dir "$D" --logger zap \
    --listen-client-urls http://127.0.0.1:23790 --advertise-client-urls http://127.0.0.1:23790 \
    --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
    --initial-cluster fl=http://127.0.0.1:23800 >> "$LOG" 2>&1 &
  SPID=$!; sleep 3
}
etcd_load() {
  local v; v=$(head -c 30000 /dev/zero | tr '\0' x)
  local end=$((SECONDS + 75)) i=0
  while [ $SECONDS -lt $end ]; do
    i=$((i + 1)); ETCDCTL_API=3 timeout 5 etcdctl --endpoints 127.0.0.1:23790 put "key$((i % 500))" "$v" 2>&1 | tail -1
  done
}
etcd_stop() { pkill -TERM -u etcd -x etcd; wait_gone "$SPID" 15 || true; pkill -KILL -u etcd -x etcd; wait "$SPID" 2>/dev/null; }

# ================================================================ prometheus
prometheus_size() { echo 256; }
prometheus_init() {
  D=$MNT/prometheus; mkdir -p "$D"; chown -R prometheus:prometheus "$MNT"
  cat > $W/prometheus.yml <<'EOF'
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: self
    static_configs:
      - targets: ['127.0.0.1:19090']
EOF
}
prometheus_break() { :; }
prometheus_inject_wiped() { rm -rf "$D"/wal "$D"/chunks_head; }   # WAL and head chunks deleted under the running server
prometheus_start() {
  runuser -u prometheus -- prometheus --config.file=$W/prometheus.yml --storage.tsdb.path="$D" \
    --web.listen-address=127.0.0.1:19090 >> "$LOG" 2>&1 &
  SPID=$!; sleep 3
}
prometheus_load() { for _ in $(seq 80); do curl -s 'http://127.0.0.1:19090/api/v1/query?query=up' >/dev/null; sleep 1; done; }
prometheus_stop() { pkill -TERM -u prometheus -x prometheus; wait_gone "$SPID" 20 || true; pkill -KILL -u prometheus -x prometheus; wait "$SPID" 2>/dev/null; }

# ================================================================ nginx
nginx_size() { echo 128; }
nginx_init() {
  D=$MNT/nginx; mkdir -p "$D" $W/www; chown -R www-data:www-data "$MNT"
  head -c 200000 /dev/urandom > $W/www/big; head -c 300000 /dev/urandom > $W/body
  cat > $W/nginx.conf <<EOF
worker_processes 1;
error_log $LOG notice;
pid $W/nginx.pid;
user www-data;
events { worker_connections 64; }
http {
  access_log off;
  proxy_cache_path $D/cache levels=1:2 keys_zone=cache:1m max_size=1g inactive=1h use_temp_path=off;
  client_body_temp_path $D/client_body;
  proxy_temp_path $D/proxy_temp;
  server {
    listen 127.0.0.1:18080;
    client_max_body_size 10m;
    client_body_buffer_size 1k;
    location / {
      proxy_pass http://127.0.0.1:18081;
      proxy_cache cache;
      proxy_cache_valid 200 1h;
      proxy_buffering on;
      proxy_buffers 4 4k;
      proxy_busy_buffers_size 4k;
      proxy_max_temp_file_size 100m;
    }
  }
  server {
    listen 127.0.0.1:18081;
    root $W/www;
    location / { }
    location /echo { proxy_pass http://127.0.0.1:18081/big; }
  }
}
EOF
}
nginx_break() { :; }
nginx_inject_wiped() { rm -rf "$D"/*; }   # the volume's directories wiped under the running server
nginx_start() { nginx -c $W/nginx.conf >> "$LOG" 2>&1; sleep 1; SPID=$(cat $W/nginx.pid 2>/dev/null); }
nginx_load() {
  local end=$((SECONDS + 75)) i=0
  while [ $SECONDS -lt $end ]; do
    i=$((i + 1))
    curl -s -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:18080/big?i=$i"
    curl -s -o /dev/null -w '%{http_code}\n' --data-binary @$W/body "http://127.0.0.1:18080/echo?i=$i"
    sleep 0.2
  done
}
nginx_stop() { nginx -c $W/nginx.conf -s quit 2>/dev/null; [ -n "${SPID:-}" ] && wait_gone "$SPID" 15; sleep 1; }

# ================================================================ sqlite (python writer)
sqlite_size() { echo 128; }
sqlite_init() {
  D=$MNT/app; mkdir -p "$D"
  cat > $W/writer.py <<'EOF'
import logging, os, signal, sqlite3, sys, time
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
log = logging.getLogger("orders-writer")
path = sys.argv[1]
stop = False
def term(*_):
    global stop; stop = True
signal.signal(signal.SIGTERM, term)
log.info("starting, database %s", path)
db = sqlite3.connect(path)
db.execute("pragma journal_mode=wal")
db.execute("create table if not exists orders(id integer primary key, body blob)")
log.info("database ready, %d rows", db.execute("select count(*) from orders").fetchone()[0])
n = 0
while not stop:
    try:
        with db:
            db.executemany("insert into orders(body) values (?)", [(os.urandom(4096),) for _ in range(50)])
        n += 50
        if n % 5000 == 0:
            db.execute("pragma wal_checkpoint(truncate)")
            log.info("inserted %d rows", n)
    except sqlite3.Error as e:
        log.exception("insert failed: %s", e)
        time.sleep(2)
    time.sleep(0.05)
db.close()
log.info("stopped after %d rows", n)
EOF
}
sqlite_break() { :; }
sqlite_start() { /usr/bin/python3 $W/writer.py "$D/orders.db" >> "$LOG" 2>&1 & SPID=$!; sleep 1; }
sqlite_load() { :; }
sqlite_stop() { kill -TERM "$SPID" 2>/dev/null; wait_gone "$SPID" 10 || true; wait "$SPID" 2>/dev/null; }

# ================================================================ main
faults_of() {
  case $1 in
    postgresql) echo healthy readonly full eio xfs-shutdown missing missing-pgcontrol missing-wal eio-continue ;;
    mariadb) echo healthy readonly full eio xfs-shutdown missing missing-ibdata eio-continue ;;
    redis) echo healthy readonly full eio xfs-shutdown missing eio-continue ;;
    etcd) echo healthy readonly full eio xfs-shutdown missing eio-continue ;;
    prometheus) echo healthy readonly full eio xfs-shutdown eio-continue wiped ;;
    nginx) echo healthy readonly full eio xfs-shutdown eio-continue wiped ;;
    sqlite) echo healthy readonly full eio xfs-shutdown eio-continue ;;
  esac
}

[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }
install_packages
if [ $# -ge 1 ]; then progs=$1; shift; else progs="postgresql mariadb redis etcd prometheus nginx sqlite"; fi
for p in $progs; do
  fl=${*:-$(faults_of "$p")}
  for f in $fl; do capture "$p" "$f"; done
done
