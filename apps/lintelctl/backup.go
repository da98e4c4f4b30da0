package main

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/lintel-io/lintel/authz"
	"github.com/spf13/cobra"
)

// backupOptions are the flags of lintelctl backup.
type backupOptions struct {
	state   string
	out     string
	secrets []string
	force   bool
}

// backupCommand returns "lintelctl backup".
func (a *app) backupCommand() *cobra.Command {
	var o backupOptions
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Archive the state and the secrets (the crown jewels)",
		Long: `Backup writes one gzip-compressed tar archive of the state file and of the
secret directories, with their modes, owners and times, so that a lost
machine does not mean re-keying every device and edge.

The crown jewels of a deployment are:

  - the state file (--state of render; state.json beside the inventory by
    default): every credential's hash and public key. Without it, the next
    render re-keys every identity;
  - the secrets render wrote under its --out directory DIR:
      DIR/central/secrets/          central's service passwords, command and hash keys
      DIR/edges/<org>-<edge>/secrets/   each edge's seeds and hash key
      DIR/devices/, DIR/services/   the passwords still to hand out
    Seeds and hash keys exist nowhere else; the hash key cannot be replaced
    without re-enrolling every credential. "--secrets DIR" takes them all
    at once.

Back up after every render and keep the archive as safe as the secrets:
it holds them in clear. The archive is written with mode 0600, atomically;
backup refuses to overwrite an existing one unless --force is given.

Entries are named by their absolute paths without the leading "/", so
"tar -xzpf FILE -C /" restores them in place and "tar -tzvf FILE" lists them.`,
		Example: `  lintelctl backup --state deploy/state.json --secrets deploy/out --out backup-$(date +%F).tar.gz
  lintelctl backup --state deploy/state.json --secrets deploy/out/central/secrets \
      --secrets deploy/out/edges/acme-hq/secrets --out backup.tar.gz`,
		Args: cobra.NoArgs,
		RunE: a.runE(func(cmd *cobra.Command, _ []string) error {
			n, err := backup(o)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "wrote %s: the state and %d entries of %d secret directories\n", o.out, n, len(o.secrets))
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.state, "state", "", "the state file (required)")
	f.StringVarP(&o.out, "out", "o", "", "the archive to write, e.g. backup.tar.gz (required)")
	f.StringArrayVar(&o.secrets, "secrets", nil, "a directory of secrets to archive, recursively; repeatable")
	f.BoolVar(&o.force, "force", false, "overwrite an existing archive")
	_ = cmd.MarkFlagRequired("state") // the flags exist
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

// backup writes the archive o describes and returns how many entries of
// the secret directories it holds.
func backup(o backupOptions) (n int, err error) {
	data, err := os.ReadFile(o.state)
	if err != nil {
		return 0, fmt.Errorf("state: %w", err)
	}
	if _, err := authz.ParseState(data); err != nil {
		return 0, fmt.Errorf("state %s: %w", o.state, err)
	}
	for _, d := range o.secrets {
		fi, err := os.Stat(d)
		if err != nil {
			return 0, fmt.Errorf("--secrets: %w", err)
		}
		if !fi.IsDir() {
			return 0, usagef("--secrets %s: not a directory", d)
		}
	}
	if !o.force {
		ok, err := exists(o.out)
		if err != nil {
			return 0, err
		}
		if ok {
			return 0, fmt.Errorf("%s exists; pass --force to overwrite it", o.out)
		}
	}
	outAbs, err := filepath.Abs(o.out)
	if err != nil {
		return 0, err
	}

	f, err := os.CreateTemp(filepath.Dir(o.out), "."+filepath.Base(o.out)+".tmp-*") // mode 0600
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", o.out, err)
	}
	tmp := f.Name()
	tmpAbs, _ := filepath.Abs(tmp)
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	ar := &archiver{tw: tw, seen: make(map[string]bool), skip: map[string]bool{outAbs: true, tmpAbs: true}}
	if err := ar.add(o.state); err != nil {
		return 0, err
	}
	before := len(ar.seen)
	for _, d := range o.secrets {
		if err := filepath.WalkDir(d, func(path string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return ar.add(path)
		}); err != nil {
			return 0, fmt.Errorf("--secrets %s: %w", d, err)
		}
	}
	n = len(ar.seen) - before
	if err := tw.Close(); err != nil {
		return 0, fmt.Errorf("write %s: %w", o.out, err)
	}
	if err := zw.Close(); err != nil {
		return 0, fmt.Errorf("write %s: %w", o.out, err)
	}
	if err := f.Chmod(modeSecret); err != nil {
		return 0, fmt.Errorf("write %s: %w", o.out, err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("write %s: %w", o.out, err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("write %s: %w", o.out, err)
	}
	if err := os.Rename(tmp, o.out); err != nil {
		return 0, fmt.Errorf("write %s: %w", o.out, err)
	}
	return n, nil
}

// archiver adds files to a tar archive once each, with their metadata.
type archiver struct {
	tw   *tar.Writer
	seen map[string]bool // archive names written
	skip map[string]bool // absolute paths never archived (the archive itself)
}

// add archives the file, directory or symbolic link at path (not what a
// directory holds) under its absolute path without the leading separator.
func (ar *archiver) add(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	if ar.skip[abs] {
		return nil
	}
	name := strings.TrimPrefix(filepath.ToSlash(abs), "/")
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	var link string
	switch {
	case fi.Mode().IsRegular(), fi.IsDir():
	case fi.Mode()&fs.ModeSymlink != 0:
		if link, err = os.Readlink(path); err != nil {
			return err
		}
	default:
		return nil // sockets, devices, pipes: nothing to restore
	}
	if fi.IsDir() {
		name += "/"
	}
	if name == "/" || ar.seen[name] {
		return nil
	}
	h, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	h.Name = name
	if err := ar.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	ar.seen[name] = true
	if !fi.Mode().IsRegular() {
		return nil
	}
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	if _, err := io.CopyN(ar.tw, src, h.Size); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
