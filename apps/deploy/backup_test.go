package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/testing/pgtest"
	"github.com/lintel-io/lintel/testing/tooltest"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	backupScript  = "backup/lintel-backup.sh"
	restoreScript = "backup/lintel-restore.sh"
	backupLib     = "backup/lintel-backup-lib.sh" // sourced by both
)

// TestBackupScriptsShellcheck checks the backup and restore scripts, and
// what they source (backup/.shellcheckrc lets shellcheck follow it).
func TestBackupScriptsShellcheck(t *testing.T) {
	opsShellcheck(t, backupScript, restoreScript, backupLib)
}

// script runs a backup script with env added to the environment.
func script(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("sh", args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// commands returns the lines of a dry run that are commands ("+ ...").
func commands(out string) []string {
	var cmds []string
	for _, l := range strings.Split(out, "\n") {
		if c, ok := strings.CutPrefix(l, "+ "); ok {
			cmds = append(cmds, c)
		}
	}
	return cmds
}

// TestBackupDryRun checks that a dry run prints every command, in the
// order that makes the backup consistent, and changes nothing.
func TestBackupDryRun(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	if err := os.Mkdir(store, 0o700); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "backups")
	stop, start := "systemctl stop lintel-edge", "systemctl start lintel-edge"
	if _, err := exec.LookPath("systemctl"); err != nil {
		stop, start = "service lintel-edge stop", "service lintel-edge start"
	}

	for _, tc := range []struct {
		name string
		args []string
		want []string // prefixes of the commands, in order
	}{
		{"zfs", []string{backupScript, "-n", "zfs", "-c", "daily", "-p", "lintel", "-r", "zfs@backup.example:data1/lintel", "tank/lintel"}, []string{
			"psql -X -q -v ON_ERROR_STOP=1 -d lintel -c CHECKPOINT",
			"zfs snapshot -r tank/lintel@lintel-daily-",
			"ssh zfs@backup.example zfs list -H -t snapshot -o name -s creation -d 1 data1/lintel",
			"zfs send -R -I @<newest on remote> tank/lintel@lintel-daily-",
		}},
		{"files", []string{backupScript, "-n", "files", "-s", store, "-S", "lintel-edge", "-p", "lintel", "-e", store, "-r", "backup.example:lintel", out}, []string{
			"mkdir -p " + out + "/.lintel-",
			"pg_dump -Fc --no-password -d lintel -f " + out + "/.lintel-",
			stop,
			"tar -C " + store + " -cf " + out + "/.lintel-",
			start,
			"tar -C " + store + " -cf " + out + "/.lintel-",
			"(cd " + out + "/.lintel-",
			"mv " + out + "/.lintel-",
			"rsync -a --delete --exclude .*.partial " + out + "/ backup.example:lintel/",
		}},
		{"restore zfs", []string{restoreScript, "-n", "zfs", "-S", "postgresql", "-S", "lintel-edge", "tank/lintel@lintel-daily-20260101T000000Z"}, []string{
			strings.ReplaceAll(stop, "lintel-edge", "postgresql"),
			stop,
			"zfs rollback -r tank/lintel@lintel-daily-20260101T000000Z",
			start,
			strings.ReplaceAll(start, "lintel-edge", "postgresql"),
		}},
		{"restore from offsite", []string{restoreScript, "-n", "zfs", "-r", "zfs@backup.example:data1/lintel", "tank/lintel@lintel-daily-20260101T000000Z"}, []string{
			"ssh zfs@backup.example zfs send -R data1/lintel@lintel-daily-20260101T000000Z | zfs receive -F tank/lintel",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := script(t, nil, tc.args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, o)
			}
			got := commands(o)
			if len(got) != len(tc.want) {
				t.Fatalf("%d commands, want %d:\n%s", len(got), len(tc.want), o)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("command %d: %q, want %q...", i, got[i], w)
				}
			}
		})
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a dry run created %s: %v", out, err)
	}

	// Mistakes are refused, naming the option.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{backupScript, "zfs", "-c", "monthly", "tank/lintel"}, "-c monthly: want hourly, daily or weekly"},
		{[]string{backupScript, "zfs", "-k", "24,7", "tank/lintel"}, "-k 24,7: want three counts"},
		{[]string{backupScript, "zfs", "-k", "24,x,8", "tank/lintel"}, `-k daily "x": want a non-negative number`},
		{[]string{backupScript, "zfs", "-r", "nohost", "tank/lintel"}, "-r nohost: want [USER@]HOST:DATASET"},
		{[]string{backupScript, "files", out}, "nothing to back up"},
		{[]string{backupScript, "files", "-s", filepath.Join(dir, "nowhere"), out}, "no such directory"},
		{[]string{restoreScript, "files", "-s", store, dir}, "no SHA256SUMS"},
		{[]string{restoreScript, "zfs", "tank/lintel"}, "want DATASET@SNAPSHOT"},
	} {
		if o, err := script(t, nil, tc.args...); err == nil || !strings.Contains(o, tc.want) {
			t.Errorf("%q: %v, want an error with %q:\n%s", tc.args, err, tc.want, o)
		}
	}
}

// TestRestoreDrill is the restore drill of docs/deploy.md on a host
// without ZFS: a real PostgreSQL database and a real JetStream store are
// backed up with the script and mirrored offsite with rsync, destroyed
// with the local backups, restored from the offsite copy with the script,
// and the rows and the messages are back. A damaged backup is refused
// before anything is touched.
func TestRestoreDrill(t *testing.T) {
	for _, tool := range []struct{ name, pkg string }{
		{"psql", "postgresql-client"}, {"pg_dump", "postgresql-client"}, {"pg_restore", "postgresql-client"},
		{"createdb", "postgresql-client"}, {"dropdb", "postgresql-client"}, {"tar", "tar"}, {"sha256sum", "coreutils"},
		{"rsync", "rsync"},
	} {
		tooltest.Path(t, tool.name, tool.pkg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 200

	// A database with history rows.
	pool := pgtest.New(t)
	cc := pool.Config().ConnConfig
	db := cc.Database
	env := []string{"PGHOST=" + cc.Host, "PGPORT=" + strconv.Itoa(int(cc.Port)), "PGUSER=" + cc.User, "PGPASSWORD=" + cc.Password,
		"PGSSLMODE=disable", "PGCONNECT_TIMEOUT=10"}
	if _, err := pool.Exec(ctx, `CREATE TABLE history (id int PRIMARY KEY, subject text NOT NULL, at timestamptz NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO history SELECT i, 'acme.hq.reader.r1.evt', '2026-01-01'::timestamptz + i * interval '1 second' FROM generate_series(1, $1) i`, n); err != nil {
		t.Fatal(err)
	}
	pool.Close()

	// A JetStream store with n messages.
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	opts := natstest.DefaultOptions()
	opts.StoreDir = store
	srv := natstest.Run(t, opts)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"acme.hq.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		if _, err := js.Publish(ctx, "acme.hq.reader.r1.evt", []byte(fmt.Sprintf("event %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	nc.Close()
	srv.Close()

	// Back up, with an older backup beside it: -k 1 keeps the new one only.
	backups := filepath.Join(dir, "backups")
	older := filepath.Join(backups, "lintel-20200101T000000Z")
	if err := os.MkdirAll(older, 0o700); err != nil {
		t.Fatal(err)
	}
	// The offsite copy is a directory here; rsync treats host:path alike.
	offsite := filepath.Join(dir, "offsite")
	if err := os.MkdirAll(filepath.Join(offsite, "lintel-20200101T000000Z"), 0o700); err != nil {
		t.Fatal(err)
	}
	o, err := script(t, env, backupScript, "files", "-s", store, "-p", db, "-k", "1", "-r", offsite, backups)
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, o)
	}
	last := strings.TrimSpace(o[strings.LastIndex(o, "backup ")+len("backup "):])
	kept, err := filepath.Glob(filepath.Join(backups, "lintel-*"))
	if err != nil || len(kept) != 1 || kept[0] != last {
		t.Fatalf("backups kept %v (%v), want only %s", kept, err, last)
	}
	mirrored, err := filepath.Glob(filepath.Join(offsite, "lintel-*"))
	if err != nil || len(mirrored) != 1 || filepath.Base(mirrored[0]) != filepath.Base(last) {
		t.Fatalf("offsite holds %v (%v), want only %s", mirrored, err, filepath.Base(last))
	}
	for _, f := range []string{"jetstream.tar", "postgres.dump", "SHA256SUMS"} {
		fi, err := os.Stat(filepath.Join(last, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Fatalf("%s: mode %v, want a file only its owner reads", f, fi.Mode())
		}
	}

	// Destroy the store, the database and the local backups: the restore
	// comes from the offsite copy.
	for _, d := range []string{store, backups} {
		if err := os.RemoveAll(d); err != nil {
			t.Fatal(err)
		}
	}
	last = mirrored[0]
	admin := func(sql string) {
		t.Helper()
		if o, err := script(t, env, "-c", `psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "$0"`, sql); err != nil {
			t.Fatalf("%s: %v\n%s", sql, err, o)
		}
	}
	admin(`DROP DATABASE "` + db + `" WITH (FORCE)`)

	// A damaged backup is refused, and nothing is restored from it.
	damaged := filepath.Join(dir, "damaged")
	if o, err := exec.Command("cp", "-Rp", last, damaged).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, o)
	}
	f, err := os.OpenFile(filepath.Join(damaged, "jetstream.tar"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("X"), 600); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if o, err := script(t, env, restoreScript, "files", "-s", store, "-p", db, damaged); err == nil || !strings.Contains(o, "checksums do not match") {
		t.Fatalf("restore of a damaged backup: %v\n%s", err, o)
	}
	if _, err := os.Stat(store); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused restore created the store: %v", err)
	}

	// Restore.
	if o, err := script(t, env, restoreScript, "files", "-s", store, "-p", db, last); err != nil {
		t.Fatalf("restore: %v\n%s", err, o)
	}
	// A second restore over what is there is refused without -f.
	if o, err := script(t, env, restoreScript, "files", "-s", store, last); err == nil || !strings.Contains(o, "is not empty") {
		t.Fatalf("restore over a store: %v\n%s", err, o)
	}

	// The rows are back.
	conn, err := pgx.Connect(ctx, cc.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var count, maxID int
	var lastAt time.Time
	if err := conn.QueryRow(ctx, `SELECT count(*), max(id), max(at) FROM history`).Scan(&count, &maxID, &lastAt); err != nil {
		t.Fatal(err)
	}
	if count != n || maxID != n || !lastAt.Equal(time.Date(2026, 1, 1, 0, 0, n, 0, time.UTC)) {
		t.Fatalf("restored history: %d rows, max id %d, last at %v; want %d", count, maxID, lastAt, n)
	}

	// The messages are back.
	opts = natstest.DefaultOptions()
	opts.StoreDir = store
	srv = natstest.Run(t, opts)
	nc, err = srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err = jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != n || info.State.FirstSeq != 1 || info.State.LastSeq != n {
		t.Fatalf("restored stream: %+v, want %d messages", info.State, n)
	}
	for _, seq := range []uint64{1, n / 2, n} {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("event %d", seq); string(m.Data) != want {
			t.Fatalf("message %d: %q, want %q", seq, m.Data, want)
		}
	}
}
