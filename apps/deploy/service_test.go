package deploy_test

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/lintel-io/lintel/testing/tooltest"
)

// opsApps are the apps the service files run, by binary name.
var opsApps = []string{"central", "edge", "gateway"}

// opsBuild builds central, edge and gateway into a temporary directory.
func opsBuild(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, app := range opsApps {
		args = append(args, "github.com/lintel-io/lintel/apps/"+app)
	}
	if out, err := exec.Command(goBin, args...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// unitLines returns the values of key in a unit file, in order.
func unitLines(t *testing.T, path, key string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+"="); ok {
			out = append(out, v)
		}
	}
	return out
}

// TestServiceFiles checks the systemd units and the rc.d scripts against
// the apps, built once for both.
func TestServiceFiles(t *testing.T) {
	bin := opsBuild(t)
	t.Run("systemd", func(t *testing.T) { testSystemdUnits(t, bin) })
	t.Run("rc.d", func(t *testing.T) { testFreeBSDRCScripts(t, bin) })
}

// testSystemdUnits runs systemd-analyze verify on each unit, with its
// binary path pointing at the app just built, and systemd-analyze
// security, which must rate the sandbox "OK" (exposure at most 2.0). The
// unit's command lines are run against the real binary: the flags are
// ones the app accepts, and -check refuses a missing configuration with
// the app's usage exit code (2, which the unit does not restart on).
func testSystemdUnits(t *testing.T, bin string) {
	analyze := tooltest.Path(t, "systemd-analyze", "systemd")
	dir := t.TempDir()
	for _, app := range opsApps {
		t.Run(app, func(t *testing.T) {
			unit := "lintel-" + app + ".service"
			src, err := os.ReadFile(filepath.Join("systemd", unit))
			if err != nil {
				t.Fatal(err)
			}
			installed := "/usr/local/bin/lintel-" + app
			if !bytes.Contains(src, []byte("ExecStart="+installed+" ")) {
				t.Fatalf("%s does not run %s", unit, installed)
			}
			path := filepath.Join(dir, unit)
			if err := os.WriteFile(path, bytes.ReplaceAll(src, []byte(installed), []byte(filepath.Join(bin, app))), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
			if err != nil || len(bytes.TrimSpace(out)) > 0 {
				t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
			}
			out, err = exec.Command(analyze, "security", "--offline=yes", "--threshold=20", path).CombinedOutput()
			if err != nil {
				t.Errorf("systemd-analyze security %s: %v\n%s", unit, err, out)
			} else if !regexp.MustCompile(`Overall exposure level for \S+: [0-9.]+ OK`).Match(out) {
				t.Errorf("systemd-analyze security %s: not rated OK:\n%s", unit, out)
			}
			if got := unitLines(t, path, "ExecReload"); len(got) != 1 || got[0] != "/bin/kill -HUP $MAINPID" {
				t.Errorf("ExecReload %q, want SIGHUP to the app", got)
			}

			// The unit's command lines, with a configuration that is missing.
			missing := filepath.Join(t.TempDir(), app+".json")
			for _, key := range []string{"ExecStartPre", "ExecStart"} {
				lines := unitLines(t, path, key)
				if len(lines) != 1 {
					t.Fatalf("%s: %d lines, want 1", key, len(lines))
				}
				args := strings.Fields(strings.ReplaceAll(lines[0], "/etc/lintel/"+app+".json", missing))
				cmd := exec.Command(args[0], args[1:]...)
				out, err := cmd.CombinedOutput()
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), missing) {
					t.Errorf("%s %q: %v, want exit 2 naming %s:\n%s", key, args, err, missing, out)
				}
			}
		})
	}

	// The tool does check: an unknown directive is reported.
	bad := filepath.Join(dir, "lintel-bad.service")
	src, err := os.ReadFile(filepath.Join(dir, "lintel-edge.service"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, bytes.Replace(src, []byte("[Service]\n"), []byte("[Service]\nProtectEverything=yes\n"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, _ := exec.Command(analyze, "verify", "--man=no", bad).CombinedOutput(); !bytes.Contains(out, []byte("ProtectEverything")) {
		t.Errorf("systemd-analyze verify accepted an unknown directive:\n%s", out)
	}
}

// testFreeBSDRCScripts checks the rc.d scripts with shellcheck and holds
// them to rc.subr's conventions: the app runs under daemon(8), supervised
// and restarted (-r), with the supervisor's pid (-P) for stop and the
// app's (-p) for status and reload, which sends SIGHUP. The arguments
// after the binary are run against the real app.
func testFreeBSDRCScripts(t *testing.T, bin string) {
	opsShellcheck(t, "freebsd/rc.d/lintel_central", "freebsd/rc.d/lintel_edge", "freebsd/rc.d/lintel_gateway", "freebsd/zfs-layout.sh")
	for _, app := range opsApps {
		t.Run(app, func(t *testing.T) {
			name := "lintel_" + app
			b, err := os.ReadFile(filepath.Join("freebsd/rc.d", name))
			if err != nil {
				t.Fatal(err)
			}
			src := string(b)
			for _, want := range []string{
				"# PROVIDE: " + name + "\n",
				"\nname=" + name + "\n",
				"\nrcvar=" + name + "_enable\n",
				`: "${` + name + `_enable:=NO}"`,
				`: "${` + name + `_config:=/usr/local/etc/lintel/` + app + `.json}"`,
				"\nprocname=/usr/local/bin/lintel-" + app + "\n",
				"\ncommand=/usr/sbin/daemon\n",
				"\nextra_commands=\"reload configtest\"\n",
				"\nsig_reload=HUP\n",
				"\nload_rc_config \"$name\"\n",
				"\nrun_rc_command \"$1\"\n",
				// rc.subr passes ${name}_flags to daemon(8): they go to the app.
				"\n" + name + "_args=${" + name + "_flags:-}\n" + name + "_flags=\n",
			} {
				if !strings.Contains(src, want) {
					t.Errorf("%s lacks %q", name, want)
				}
			}
			m := regexp.MustCompile(`(?m)^command_args="(.*)"$`).FindStringSubmatch(src)
			if m == nil {
				t.Fatalf("%s: no command_args", name)
			}
			daemonArgs, appArgs, ok := strings.Cut(m[1], " ${procname} ")
			if !ok {
				t.Fatalf("command_args %q does not run ${procname}", m[1])
			}
			for _, flag := range []string{"-r", "-P ${supervisor_pidfile}", "-p ${pidfile}", "-u ${" + name + "_user}"} {
				if !strings.Contains(" "+daemonArgs+" ", " "+flag+" ") {
					t.Errorf("daemon(8) arguments %q lack %s", daemonArgs, flag)
				}
			}
			missing := filepath.Join(t.TempDir(), app+".json")
			if !strings.HasSuffix(appArgs, " ${"+name+"_args}") {
				t.Errorf("the app's arguments %q do not end with ${%s_args}", appArgs, name)
			}
			args := strings.Fields(strings.NewReplacer("${"+name+"_config}", missing, "${"+name+"_args}", "").Replace(appArgs))
			out, err := exec.Command(filepath.Join(bin, app), append([]string{"-check"}, args...)...).CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), missing) {
				t.Errorf("lintel-%s -check %q: %v, want exit 2 naming %s:\n%s", app, args, err, missing, out)
			}
		})
	}
}

// TestZFSLayoutDryRun prints the datasets the layout script would create
// for each role; a wrong role is refused.
func TestZFSLayoutDryRun(t *testing.T) {
	for _, tc := range []struct {
		role string
		want []string
	}{
		{"central", []string{
			"+ zfs create -o mountpoint=/var/db/lintel -o compression=lz4 -o atime=off -o xattr=sa tank/lintel",
			"+ zfs create -o mountpoint=/var/db/lintel/central -o recordsize=128K tank/lintel/jetstream",
			"+ zfs create -o mountpoint=/var/db/postgres/data15 -o recordsize=16K -o redundant_metadata=most tank/lintel/postgres",
			"+ chown -R postgres:postgres /var/db/postgres/data15",
			"+ chmod 0700 /var/db/postgres/data15",
			"+ chown lintel:lintel /var/db/lintel/central",
			"+ chmod 0700 /var/db/lintel/central",
		}},
		{"edge", []string{
			"+ zfs create -o mountpoint=/var/db/lintel -o compression=lz4 -o atime=off -o xattr=sa tank/lintel",
			"+ zfs create -o mountpoint=/var/db/lintel/edge -o recordsize=128K tank/lintel/jetstream",
			"+ chown lintel:lintel /var/db/lintel/edge",
			"+ chmod 0700 /var/db/lintel/edge",
		}},
	} {
		t.Run(tc.role, func(t *testing.T) {
			out, err := exec.Command("sh", "freebsd/zfs-layout.sh", "-n", "tank", tc.role).CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if got := strings.Split(strings.TrimSpace(string(out)), "\n"); !equalLines(got, tc.want) {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
	out, err := exec.Command("sh", "freebsd/zfs-layout.sh", "-n", "tank", "hub").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "role hub: want central or edge") {
		t.Fatalf("role hub: %v\n%s", err, out)
	}
}

func equalLines(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
