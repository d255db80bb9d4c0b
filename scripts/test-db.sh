#!/usr/bin/env bash
# Database servers for the SanityCheck tests: real PostgreSQL and MariaDB from
# Debian's packages, on loopback, in a throwaway data directory.
#
#   scripts/test-db.sh install
#       Installs `postgresql` and `mariadb-server` when their server binaries
#       are missing (as root: apt-get, services kept from starting; otherwise
#       it names the packages and fails).
#   scripts/test-db.sh serve postgres|mariadb PORT
#       Creates a data directory under ${TMPDIR:-/tmp}, starts the server on
#       127.0.0.1:PORT only (run as `nobody` when started as root, since
#       PostgreSQL refuses root), creates database `orders` and the password
#       user `dr_probe`, then prints ONE line on stdout:
#           ready ENGINE 127.0.0.1 PORT USER PASSWORD DATABASE CA_FILE OTHER_CA_FILE
#       The server accepts TLS (and plain) connections with a certificate for
#       127.0.0.1/localhost from a throwaway CA (CA_FILE); OTHER_CA_FILE is an
#       unrelated CA, for tests that verification refuses a foreign server.
#       It serves until its standard input closes (the test process exited,
#       however it ended) or it gets SIGINT/SIGTERM; then it stops the server
#       and removes the data directory. By hand: run it, Ctrl-D stops it.
#       Exit 3 means the port was taken (the caller picks another).
set -euo pipefail

USER_NAME=dr_probe
DATABASE=orders

log() { echo "test-db: $*" >&2; }
die() { log "$*"; exit 1; }

pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [[ -n "$d" && -x "$d/postgres" ]] && echo "$d"
}

maria_bin() { command -v mariadbd || { [[ -x /usr/sbin/mariadbd ]] && echo /usr/sbin/mariadbd; }; }

install() {
  local need=()
  command -v openssl >/dev/null || need+=(openssl)
  pg_bin >/dev/null || need+=(postgresql)
  maria_bin >/dev/null || need+=(mariadb-server)
  ((${#need[@]})) || { log "postgresql and mariadb-server are installed"; return 0; }
  if [[ $(id -u) -ne 0 ]]; then
    die "missing Debian packages: ${need[*]} (run as root: scripts/test-db.sh install, or apt-get install ${need[*]})"
  fi
  log "installing ${need[*]}"
  # Keep the packages' own services from starting: the tests start their own.
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
  fi
  local rc=0
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"; } >&2 || rc=$?
  ((made_policy)) && rm -f "$policy"
  return $rc
}

# A throwaway CA, a server certificate it signs for 127.0.0.1 and localhost,
# and an unrelated CA.
make_certificates() {
  local d=$1
  local ssl=(openssl req -x509 -newkey rsa:2048 -nodes -days 2)
  "${ssl[@]}" -keyout "$d/ca.key" -out "$d/ca.crt" -subj "/CN=aurora-dr test CA" 2>/dev/null
  "${ssl[@]}" -keyout "$d/other-ca.key" -out "$d/other-ca.crt" -subj "/CN=aurora-dr other CA" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout "$d/server.key" -out "$d/server.csr" -subj "/CN=127.0.0.1" 2>/dev/null
  printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >"$d/server.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
    -extfile "$d/server.ext" -out "$d/server.crt" 2>/dev/null
  chmod 600 "$d/server.key" "$d/ca.key" "$d/other-ca.key"
  chmod 644 "$d/ca.crt" "$d/other-ca.crt" "$d/server.crt"
}

# Runs a command as the server's user.
as_server_user() {
  if [[ $(id -u) -eq 0 ]]; then
    setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
  else
    "$@"
  fi
}

random_password() { head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 20; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

cleanup() {
  set +e
  [[ -n ${WATCH:-} ]] && kill "$WATCH" 2>/dev/null
  "stop_$ENGINE" "$DIR"
  rm -rf "$DIR"
}

serve() {
  local engine=${1:-} port=${2:-}
  [[ $engine == postgres || $engine == mariadb ]] || die "usage: $0 serve postgres|mariadb PORT"
  [[ $port =~ ^[0-9]+$ ]] || die "usage: $0 serve $engine PORT"
  port_free "$port" || { log "port $port is taken"; exit 3; }
  # Globals: the EXIT trap runs after this function has returned.
  ENGINE=$engine
  DIR=$(mktemp -d "${TMPDIR:-/tmp}/aurora-dr-$engine.XXXXXX")
  local dir=$DIR
  chmod 755 "$dir"
  mkdir -p "$dir/data" "$dir/sock" "$dir/log" "$dir/tls"
  make_certificates "$dir/tls"
  [[ $(id -u) -eq 0 ]] && chown -R nobody:nogroup "$dir/data" "$dir/sock" "$dir/log" "$dir/tls"
  local password
  password=$(random_password)
  trap cleanup EXIT
  trap 'exit 0' INT TERM
  "start_$engine" "$dir" "$port" "$password"
  echo "ready $engine 127.0.0.1 $port $USER_NAME $password $DATABASE $dir/tls/ca.crt $dir/tls/other-ca.crt"
  # Serve until the caller goes away (stdin closes) or a signal arrives;
  # `wait` lets the INT/TERM trap run at once.
  cat <&0 >/dev/null &
  WATCH=$!
  wait "$WATCH" || true
}

start_postgres() {
  local dir=$1 port=$2 password=$3 bin
  bin=$(pg_bin) || die "PostgreSQL is not installed (scripts/test-db.sh install)"
  printf '%s\n' "$password" >"$dir/pw"
  chmod 644 "$dir/pw"
  as_server_user "$bin/initdb" -D "$dir/data" -U "$USER_NAME" --pwfile="$dir/pw" -E UTF8 \
    --auth-local=trust --auth-host=scram-sha-256 --no-sync >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  rm -f "$dir/pw"
  if ! as_server_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/log/server.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $port -k $dir/sock -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
        -c ssl=on -c ssl_cert_file=$dir/tls/server.crt -c ssl_key_file=$dir/tls/server.key" \
    start >/dev/null; then
    cat "$dir/log/server.log" >&2 || true
    grep -q "Address already in use" "$dir/log/server.log" 2>/dev/null && exit 3
    die "postgres did not start"
  fi
  "$bin/psql" -X -q -h "$dir/sock" -p "$port" -U "$USER_NAME" -d postgres -v ON_ERROR_STOP=1 \
    -c "CREATE DATABASE $DATABASE" >&2
}

stop_postgres() {
  local bin
  bin=$(pg_bin) || return 0
  [[ -f $1/data/postmaster.pid ]] || return 0
  as_server_user "$bin/pg_ctl" -D "$1/data" -m immediate -w -t 30 stop >/dev/null 2>&1
}

start_mariadb() {
  local dir=$1 port=$2 password=$3 server install_db client
  server=$(maria_bin) || die "MariaDB is not installed (scripts/test-db.sh install)"
  install_db=$(command -v mariadb-install-db) || die "mariadb-install-db not found"
  client=$(command -v mariadb) || die "mariadb client not found"
  local user_args=()
  [[ $(id -u) -eq 0 ]] && user_args=(--user=nobody)
  "$install_db" --no-defaults "${user_args[@]}" --datadir="$dir/data" --auth-root-authentication-method=normal \
    --skip-test-db >"$dir/install.log" 2>&1 || { cat "$dir/install.log" >&2; die "mariadb-install-db failed"; }
  "$server" --no-defaults "${user_args[@]}" --datadir="$dir/data" --socket="$dir/sock/mysqld.sock" \
    --port="$port" --bind-address=127.0.0.1 --pid-file="$dir/sock/mysqld.pid" --log-error="$dir/log/server.log" \
    --skip-log-bin --innodb-buffer-pool-size=16M --innodb-flush-log-at-trx-commit=0 --skip-name-resolve \
    --ssl-cert="$dir/tls/server.crt" --ssl-key="$dir/tls/server.key" --ssl-ca="$dir/tls/ca.crt" \
    </dev/null >/dev/null 2>&1 &
  echo $! >"$dir/server.pid"
  local i
  for ((i = 0; i < 600; i++)); do
    if "$client" --no-defaults -S "$dir/sock/mysqld.sock" -u root -e "SELECT 1" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$(cat "$dir/server.pid")" 2>/dev/null; then
      cat "$dir/log/server.log" >&2 || true
      grep -q "Address already in use\|Can't start server: Bind" "$dir/log/server.log" 2>/dev/null && exit 3
      die "mariadbd exited during start-up"
    fi
    sleep 0.1
  done
  ((i < 600)) || { cat "$dir/log/server.log" >&2; die "mariadbd did not become ready in 60 s"; }
  "$client" --no-defaults -S "$dir/sock/mysqld.sock" -u root -e "
    CREATE DATABASE $DATABASE;
    CREATE USER '$USER_NAME'@'%' IDENTIFIED BY '$password';
    GRANT ALL PRIVILEGES ON *.* TO '$USER_NAME'@'%';" >&2
}

stop_mariadb() {
  local pid
  pid=$(cat "$1/server.pid" 2>/dev/null) || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  # mariadbd is our own child: wait returns when it has exited.
  wait "$pid" 2>/dev/null || true
}

case ${1:-} in
  install) install ;;
  serve) shift; serve "$@" ;;
  *) die "usage: $0 install | serve postgres|mariadb PORT" ;;
esac
