package deploy_test

import (
	"bytes"
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

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/storage"
	"github.com/lintel-io/lintel/testing/natstest"
	"github.com/lintel-io/lintel/testing/pgtest"
	"github.com/lintel-io/lintel/testing/tooltest"
	"github.com/lintel-io/lintel/topic"
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
			"zfs set lintel:offsite=lintel-daily-",
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
		{[]string{backupScript, "zfs", "-c", "daily", "-k", "24,0,8", "tank/lintel"}, "-k 24,0,8: keeps no daily snapshot"},
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
// without ZFS: a real Lintel database (migrated by package storage) and a
// real JetStream store holding the same events as envelopes are backed up
// with the script and mirrored offsite with rsync, destroyed with the
// local backups, restored from the offsite copy with the script, and the
// events are back in both. A damaged backup is refused before anything is
// touched. It runs on plain PostgreSQL and on TimescaleDB, where the
// events table is a hypertable and the script restores between
// timescaledb_pre_restore() and timescaledb_post_restore(); the
// TimescaleDB run skips without a TimescaleDB server (LINTEL_TEST_TIMESCALE_URL),
// or fails with LINTEL_REQUIRE_TIMESCALE=1, as the storage tests do.
func TestRestoreDrill(t *testing.T) {
	for _, tool := range []struct{ name, pkg string }{
		{"psql", "postgresql-client"}, {"pg_dump", "postgresql-client"}, {"pg_restore", "postgresql-client"},
		{"createdb", "postgresql-client"}, {"dropdb", "postgresql-client"}, {"tar", "tar"}, {"sha256sum", "coreutils"},
		{"rsync", "rsync"},
	} {
		tooltest.Path(t, tool.name, tool.pkg)
	}
	t.Run("postgres", func(t *testing.T) {
		restoreDrill(t, pgtest.NewDB(t), false)
	})
	t.Run("timescaledb", func(t *testing.T) {
		restoreDrill(t, pgtest.NewDB(t, pgtest.WithTimescale()), true)
	})
}

// drillThing is the thing whose events the restore drill keeps.
var drillThing = topic.Thing{Org: "acme", Edge: "hq", Type: "sensor", Code: "s1"}

// restoreDrill runs the drill on db, which is empty; with timescale its
// events table must become a hypertable.
func restoreDrill(t *testing.T, db *pgtest.DB, timescale bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const n = 200

	// Lintel's schema, as central migrates it.
	migrated, err := storage.Migrate(ctx, db.Pool, storage.MigrateOptions{})
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	isTimescale := migrated.Flavor == storage.FlavorTimescale || migrated.Flavor == storage.FlavorTimescaleApache
	if isTimescale != timescale {
		t.Fatalf("%s (%s): migrated as %s, want TimescaleDB %v", db.Source, db.Flavor, migrated.Flavor, timescale)
	}
	cc := db.Pool.Config().ConnConfig
	name := cc.Database
	env := []string{"PGHOST=" + cc.Host, "PGPORT=" + strconv.Itoa(int(cc.Port)), "PGUSER=" + cc.User, "PGPASSWORD=" + cc.Password,
		"PGSSLMODE=disable", "PGCONNECT_TIMEOUT=10"}

	// A JetStream store with n envelopes of a sensor's telemetry, the last
	// n seconds' worth.
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
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"acme.hq.>"}, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	var ids message.IDGenerator
	boot := ids.New()
	start := time.Now().UTC().Add(-n * time.Second).Truncate(time.Second)
	for i := 1; i <= n; i++ {
		at := start.Add(time.Duration(i) * time.Second)
		e := message.Envelope{ID: ids.NewAt(at), Time: at, Source: drillThing, Type: topic.Telemetry, Name: "temperature", BootID: boot, Seq: uint64(i)}
		if err := message.SetPayload(&e, map[string]any{"value": float64(i)}); err != nil {
			t.Fatal(err)
		}
		m, err := e.ToMsg(nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}

	// The database holds the same events, read from the stream and decoded
	// as central's ingest does.
	events := streamEvents(ctx, t, stream, n)
	st := storage.New(db.Pool, storage.Config{})
	res, err := st.InsertEvents(ctx, events)
	if err != nil || res.Inserted != n {
		t.Fatalf("insert: %+v, %v; want %d inserted", res, err, n)
	}
	nc.Close()
	srv.Close()
	db.Pool.Close()

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
	o, err := script(t, env, backupScript, "files", "-s", store, "-p", name, "-k", "1", "-r", offsite, backups)
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
	admin(`DROP DATABASE "` + name + `" WITH (FORCE)`)

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
	if o, err := script(t, env, restoreScript, "files", "-s", store, "-p", name, damaged); err == nil || !strings.Contains(o, "checksums do not match") {
		t.Fatalf("restore of a damaged backup: %v\n%s", err, o)
	}
	if _, err := os.Stat(store); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused restore created the store: %v", err)
	}

	// Restore.
	if o, err := script(t, env, restoreScript, "files", "-s", store, "-p", name, last); err != nil {
		t.Fatalf("restore: %v\n%s", err, o)
	}
	// A second restore over what is there is refused without -f.
	if o, err := script(t, env, restoreScript, "files", "-s", store, last); err == nil || !strings.Contains(o, "is not empty") {
		t.Fatalf("restore over a store: %v\n%s", err, o)
	}

	// The events are back, as the store reads them, and the database is
	// still Lintel's of the same flavor, taking new events.
	pool, err := pgxpool.New(ctx, db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	st = storage.New(pool, storage.Config{})
	if f, err := st.Flavor(ctx); err != nil || f != migrated.Flavor {
		t.Fatalf("restored database: flavor %q, %v; want %q", f, err, migrated.Flavor)
	}
	var got []storage.Event
	q := storage.EventQuery{Org: drillThing.Org, Limit: 75}
	for {
		page, err := st.Events(ctx, q)
		if err != nil {
			t.Fatalf("restored events: %v", err)
		}
		got = append(got, page.Events...)
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	sameEvents(t, "restored database", got, events)
	if timescale {
		var hypertables int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM timescaledb_information.hypertables
			WHERE hypertable_schema = 'lintel' AND hypertable_name = 'events'`).Scan(&hypertables); err != nil || hypertables != 1 {
			t.Fatalf("restored database: lintel.events is a hypertable %d times (%v), want once", hypertables, err)
		}
	}
	later := events[n-1]
	later.ID, later.Seq, later.DeviceTime = ids.New(), n+1, time.Now().UTC()
	if res, err := st.InsertEvents(ctx, []storage.Event{later}); err != nil || res.Inserted != 1 {
		t.Fatalf("insert into the restored database: %+v, %v", res, err)
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
	stream, err = js.Stream(ctx, "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != n || info.State.FirstSeq != 1 || info.State.LastSeq != n {
		t.Fatalf("restored stream: %+v, want %d messages", info.State, n)
	}
	sameEvents(t, "restored stream", streamEvents(ctx, t, stream, n), events)
}

// streamEvents reads the first n messages of stream and decodes them as
// central's ingest does, received when the stream stored them.
func streamEvents(ctx context.Context, t *testing.T, stream jetstream.Stream, n int) []storage.Event {
	t.Helper()
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var events []storage.Event
	for len(events) < n {
		batch, err := cons.Fetch(n-len(events), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			ev, err := storage.DecodeEnvelope(m)
			if err != nil {
				t.Fatalf("message on %s: %v", m.Subject(), err)
			}
			meta, err := m.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			ev.ReceivedAt = meta.Timestamp
			events = append(events, ev)
		}
		if err := batch.Error(); err != nil {
			t.Fatalf("reading %s: %v", stream.CachedInfo().Config.Name, err)
		}
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d messages: %v", len(events), n, ctx.Err())
		}
	}
	return events
}

// sameEvents fails the test unless got holds want's events, in order:
// the same ids, device times, sequence numbers, readings and envelopes.
func sameEvents(t *testing.T, what string, got, want []storage.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d", what, len(got), len(want))
	}
	for i, g := range got {
		w := want[i]
		if g.ID != w.ID || !g.DeviceTime.Equal(w.DeviceTime) || g.Seq != w.Seq || g.Thing != w.Thing ||
			g.Value == nil || w.Value == nil || *g.Value != *w.Value || !bytes.Equal(g.Envelope, w.Envelope) {
			t.Fatalf("%s: event %d is %+v, want %+v", what, i, g, w)
		}
	}
}

// pruneSelect runs the backup scripts' retention policy, zfs_prune_select,
// on the snapshot list in, and returns what it selects for destruction.
func pruneSelect(t *testing.T, in string, args ...string) ([]string, string, error) {
	t.Helper()
	cmd := exec.Command("sh", append([]string{"-c", `. "$0" && zfs_prune_select "$@"`, backupLib}, args...)...)
	cmd.Stdin = strings.NewReader(in)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return strings.Fields(stdout.String()), stderr.String(), err
}

// TestZFSPruneSelect runs the retention policy of lintel-backup.sh zfs on
// the snapshot list of a central that has run the cron lines of
// docs/deploy.md for ten weeks, plus snapshots taken by hand, as
// zfs list -H -p -t snapshot -o name,creation -d 1 prints it (here in no
// particular order). With -k 24,7,8 it selects the oldest hourly, daily
// and weekly snapshots beyond those counts, oldest first, and never the
// snapshot just taken, the one last sent offsite, or a snapshot it did not
// name.
func TestZFSPruneSelect(t *testing.T) {
	const ds = "tank/lintel"
	now := time.Date(2026, 3, 15, 14, 5, 2, 0, time.UTC) // a Sunday, the hourly run
	type snap struct {
		name    string
		created time.Time
	}
	var snaps []snap
	byClass := map[string][]string{} // newest first
	add := func(class string, at time.Time) {
		name := ds + "@lintel-" + class + "-" + at.Format("20060102T150405Z")
		snaps = append(snaps, snap{name, at})
		byClass[class] = append(byClass[class], name)
	}
	for h := 0; h < 30; h++ { // 5 * * * *, with a missed hour (the host was down)
		if h != 12 {
			add("hourly", now.Add(-time.Duration(h)*time.Hour))
		}
	}
	for d := 0; d < 10; d++ { // 15 3 * * *
		add("daily", time.Date(2026, 3, 15-d, 3, 15, 1, 0, time.UTC))
	}
	for w := 0; w < 10; w++ { // 25 4 * * 0
		add("weekly", time.Date(2026, 3, 15-7*w, 4, 25, 3, 0, time.UTC))
	}
	hand := []string{
		ds + "@before-upgrade-1.4",
		ds + "@lintel-hourly-manual",                 // not a stamp: taken by hand
		ds + "@lintel-monthly-20251201T000000Z",      // no such class
		ds + "@lintel-hourly-20251201T000000Z-extra", // not a stamp
	}
	for i, n := range hand {
		snaps = append(snaps, snap{n, time.Date(2025, 12, 1, i, 0, 0, 0, time.UTC)})
	}
	// The offsite copy last received the 27th newest hourly snapshot
	// (the remote was unreachable since): it is the base of the next
	// incremental stream, and stays.
	offsite := byClass["hourly"][26]

	list := func(snaps []snap) string {
		var b strings.Builder
		for i := range snaps {
			// An order that is neither by name nor by time.
			s := snaps[(i*7)%len(snaps)]
			fmt.Fprintf(&b, "%s\t%d\n", s.name, s.created.Unix())
		}
		return b.String()
	}
	if len(snaps)%7 == 0 {
		t.Fatalf("%d snapshots: the shuffle needs a count prime to 7", len(snaps))
	}

	// Oldest first: the weeklies from 4 Jan to 18 Jan, the dailies of 6 to
	// 8 March, then the hourlies but the offsite one.
	var want []string
	want = append(want, byClass["weekly"][8:][1], byClass["weekly"][8:][0])
	want = append(want, byClass["daily"][9], byClass["daily"][8], byClass["daily"][7])
	for i := len(byClass["hourly"]) - 1; i >= 24; i-- {
		if byClass["hourly"][i] != offsite {
			want = append(want, byClass["hourly"][i])
		}
	}
	got, stderr, err := pruneSelect(t, list(snaps), "24", "7", "8", offsite)
	if err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("-k 24,7,8, offsite %s: selected\n%s\nwant\n%s", offsite, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, g := range got {
		for _, h := range hand {
			if g == h {
				t.Errorf("selected %s, a snapshot it did not take", g)
			}
		}
	}

	// Without the offsite mark, that snapshot goes with the other old ones.
	got, stderr, err = pruneSelect(t, list(snaps), "24", "7", "8")
	if err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	if len(got) != len(want)+1 || !strings.Contains(strings.Join(got, " "), offsite) {
		t.Errorf("-k 24,7,8 without offsite: selected %q, want %d with %s", got, len(want)+1, offsite)
	}

	// The snapshot just taken stays even when its class keeps none; the
	// daily and the weekly taken at the same second as an hourly are told
	// apart by name.
	got, stderr, err = pruneSelect(t, list(snaps), "0", "0", "0")
	if err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	if len(got) != len(snaps)-len(hand)-1 {
		t.Errorf("-k 0,0,0: selected %d, want all %d of its own but the newest", len(got), len(snaps)-len(hand)-1)
	}
	for _, g := range got {
		if g == byClass["hourly"][0] {
			t.Errorf("-k 0,0,0: selected the newest snapshot %s", g)
		}
	}
	if got, _, err := pruneSelect(t, fmt.Sprintf("%s\t%d\n%s\t%d\n", byClass["weekly"][0], now.Unix(), byClass["daily"][0], now.Unix()), "0", "0", "0"); err != nil || len(got) != 1 || got[0] != byClass["daily"][0] {
		t.Errorf("two at one second, -k 0,0,0: %q, %v; want the daily (its name sorts first, so the weekly is the newest)", got, err)
	}

	// Nothing to prune in a fresh dataset, or where counts are not reached.
	for _, in := range []string{"", list(snaps[:3])} {
		if got, stderr, err := pruneSelect(t, in, "24", "7", "8"); err != nil || len(got) != 0 {
			t.Errorf("%q: selected %q, %v: %s", in, got, err, stderr)
		}
	}

	// A list that is not what zfs list -H -p prints is refused, naming
	// the line, and nothing is selected.
	for _, in := range []string{
		list(snaps) + ds + "@lintel-hourly-20260101T000000Z\n",                        // no creation
		list(snaps) + ds + "@lintel-hourly-20260101T000000Z\tSun Mar 15 14:05 2026\n", // not -p
		list(snaps) + "lintel-hourly-20260101T000000Z\t1767225600\n",                  // no dataset
	} {
		got, stderr, err := pruneSelect(t, in, "24", "7", "8")
		if err == nil || len(got) != 0 || !strings.Contains(stderr, "want DATASET@NAME<TAB>CREATION") {
			t.Errorf("bad line: selected %q, %v, %q; want an error naming the line", got, err, stderr)
		}
	}
}
