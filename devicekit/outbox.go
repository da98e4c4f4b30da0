package devicekit

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/lintel-io/lintel/message"
	"github.com/lintel-io/lintel/topic"
	"github.com/nats-io/nats.go"
)

// An outbox (Config.Outbox) is a directory holding one file per envelope
// that was handed to an acknowledged publish and whose acknowledgement has
// not arrived yet:
//
//	lock                 flock(2)ed while a Client uses the directory
//	{id}.msg             an envelope waiting for its acknowledgement
//	{id}.{random}.tmp    a file being written (renamed to {id}.msg once synced)
//	{name}.bad           a file set aside: unreadable, or refused by the edge
//
// A .msg file is the NATS message exactly as sent:
//
//	lintel-outbox 1 {crc32c of the rest, 8 hex digits}\n
//	{"seq":…,"subject":"…","header":{…}}\n
//	{data}
//
// seq orders the files as they were written; the checksum tells a damaged
// file from a good one.
const (
	outboxLockFile = "lock"
	outboxMsgExt   = ".msg"
	outboxTmpExt   = ".tmp"
	outboxBadExt   = ".bad"
	outboxMagic    = "lintel-outbox 1 "
)

// logKeyFile names a file in log records.
const logKeyFile = "file"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// outbox is an open, locked outbox directory. Its methods are safe for
// concurrent use.
type outbox struct {
	path string
	dir  *os.File // the directory, to sync renames
	lock *os.File // holds the flock until closed
	log  *slog.Logger

	mu      sync.Mutex
	seq     uint64                       // the last seq written or found
	pending map[message.ID]*keptEnvelope // the envelopes in .msg files
	queued  int                          // how many of them are queued
}

// keptEnvelope is an envelope in the outbox: the message exactly as sent
// (and as its .msg file holds it), in memory so that sending it again
// needs no read.
type keptEnvelope struct {
	id  message.ID
	seq uint64
	msg *nats.Msg
	// queued is set while no call is sending the envelope: found by
	// openOutbox, or left by a publish whose outcome is unknown. Only the
	// re-send (Client.resendQueued, one at a time) sends a queued envelope
	// and takes it out of the outbox.
	queued bool
}

// outboxMeta is the metadata line of a .msg file.
type outboxMeta struct {
	Seq     uint64      `json:"seq"`
	Subject string      `json:"subject"`
	Header  nats.Header `json:"header"`
}

// openOutbox creates the directory path if need be, locks it against any
// other Client, and reads the envelopes of thing it holds, queued to be sent
// again. Files it cannot use are logged and set aside (renamed to .bad),
// never deleted; they do not stop it. It fails with an error wrapping
// ErrOutboxLocked when another Client holds the lock.
func openOutbox(path string, thing topic.Thing, log *slog.Logger) (_ *outbox, err error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("devicekit: outbox %s: %w", path, err)
	}
	lock, err := os.OpenFile(filepath.Join(path, outboxLockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("devicekit: outbox %s: %w", path, err)
	}
	if err := lockFile(lock); err != nil {
		lock.Close()
		if errors.Is(err, errWouldBlock) {
			return nil, fmt.Errorf("%w: %s", ErrOutboxLocked, path)
		}
		return nil, fmt.Errorf("devicekit: outbox %s: lock: %w", path, err)
	}
	dir, err := os.Open(path)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("devicekit: outbox %s: %w", path, err)
	}
	o := &outbox{path: path, dir: dir, lock: lock, log: log.With("outbox", path), pending: make(map[message.ID]*keptEnvelope)}
	defer func() {
		if err != nil {
			o.close()
		}
	}()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("devicekit: outbox %s: %w", path, err)
	}
	slices.Sort(names)
	aside := 0
	for _, name := range names {
		file := filepath.Join(path, name)
		switch {
		case name == outboxLockFile:
		case strings.HasSuffix(name, outboxBadExt):
			aside++
		case strings.HasSuffix(name, outboxTmpExt):
			// The previous process stopped while writing it: the envelope
			// was never sent, and its publish never returned.
			o.setAside(file, errors.New("partly written: the process stopped while writing it, before sending"))
		case strings.HasSuffix(name, outboxMsgExt):
			en, err := readOutboxFile(file, strings.TrimSuffix(name, outboxMsgExt), thing)
			if err != nil {
				o.setAside(file, err)
				continue
			}
			en.queued = true
			o.pending[en.id] = en
			o.queued++
			o.seq = max(o.seq, en.seq)
		default:
			o.log.Warn("outbox: unknown file ignored", logKeyFile, file)
		}
	}
	if aside > 0 {
		o.log.Warn("outbox: files set aside earlier are still there", "count", aside)
	}
	return o, nil
}

// readOutboxFile reads and checks the .msg file named file, whose name
// without the extension is stem.
func readOutboxFile(file, stem string, thing topic.Thing) (*keptEnvelope, error) {
	id, err := message.ParseID(stem)
	if err != nil {
		return nil, fmt.Errorf("the name is not an envelope ID: %w", err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	seq, msg, err := decodeOutboxFile(b)
	if err != nil {
		return nil, err
	}
	if h := msg.Header.Get(message.HeaderMsgID); h != id.String() {
		return nil, fmt.Errorf("header %s %q is not the file's envelope ID", message.HeaderMsgID, h)
	}
	var e message.Envelope
	if err := message.DecodeMsg(msg, &e, nil); err != nil {
		return nil, fmt.Errorf("not a valid envelope: %w", err)
	}
	switch {
	case e.ID != id:
		return nil, fmt.Errorf("the envelope's ID %s is not the file's", e.ID)
	case e.Source != thing:
		return nil, fmt.Errorf("the envelope is from %s, not from this device %s", e.Source, thing)
	}
	return &keptEnvelope{id: id, seq: seq, msg: msg}, nil
}

// encodeOutboxFile returns the content of the .msg file of msg.
func encodeOutboxFile(seq uint64, msg *nats.Msg) ([]byte, error) {
	meta, err := json.Marshal(outboxMeta{Seq: seq, Subject: msg.Subject, Header: msg.Header})
	if err != nil {
		return nil, err
	}
	body := append(meta, '\n')
	body = append(body, msg.Data...)
	head := fmt.Appendf(make([]byte, 0, len(outboxMagic)+9+len(body)), "%s%08x\n", outboxMagic, crc32.Checksum(body, castagnoli))
	return append(head, body...), nil
}

// decodeOutboxFile parses the content of a .msg file.
func decodeOutboxFile(b []byte) (uint64, *nats.Msg, error) {
	if !bytes.HasPrefix(b, []byte(outboxMagic)) {
		return 0, nil, fmt.Errorf("not an outbox file (it does not begin with %q)", strings.TrimSpace(outboxMagic))
	}
	b = b[len(outboxMagic):]
	if len(b) < 9 || b[8] != '\n' {
		return 0, nil, errors.New("truncated: no checksum")
	}
	sum, err := strconv.ParseUint(string(b[:8]), 16, 32)
	if err != nil {
		return 0, nil, fmt.Errorf("bad checksum %q", b[:8])
	}
	body := b[9:]
	if got := crc32.Checksum(body, castagnoli); got != uint32(sum) {
		return 0, nil, fmt.Errorf("checksum mismatch (%08x, want %08x): damaged or truncated", got, sum)
	}
	line, data, ok := bytes.Cut(body, []byte("\n"))
	if !ok {
		return 0, nil, errors.New("truncated: no metadata line")
	}
	var meta outboxMeta
	if err := json.Unmarshal(line, &meta); err != nil {
		return 0, nil, fmt.Errorf("metadata: %w", err)
	}
	if meta.Subject == "" {
		return 0, nil, errors.New("metadata: no subject")
	}
	return meta.Seq, &nats.Msg{Subject: meta.Subject, Header: meta.Header, Data: data}, nil
}

// put writes msg, the envelope with ID id, to the outbox and syncs the file
// and the directory, so that the envelope survives a crash from then on.
// The envelope is the caller's to send, and to remove or queue once it
// knows the outcome.
func (o *outbox) put(id message.ID, msg *nats.Msg) (_ *keptEnvelope, err error) {
	o.mu.Lock()
	o.seq++
	seq := o.seq
	o.mu.Unlock()
	b, err := encodeOutboxFile(seq, msg)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(o.path, id.String()+".*"+outboxTmpExt)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(b); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if err := os.Rename(f.Name(), o.file(id)); err != nil {
		return nil, err
	}
	if err := o.dir.Sync(); err != nil {
		// The file is there, whether or not its name is durable yet: it
		// must not outlive a publish that reports an error.
		_ = os.Remove(o.file(id))
		return nil, err
	}
	k := &keptEnvelope{id: id, seq: seq, msg: msg}
	o.mu.Lock()
	o.pending[id] = k
	o.mu.Unlock()
	return k, nil
}

// queue hands k, whose publish ended without knowing whether the edge
// stored it, to the re-send.
func (o *outbox) queue(k *keptEnvelope) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.pending[k.id]; ok && !k.queued {
		k.queued = true
		o.queued++
	}
}

// queuedBefore reports whether an envelope written before seq is queued.
func (o *outbox) queuedBefore(seq uint64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.queued == 0 {
		return false
	}
	for _, k := range o.pending {
		if k.queued && k.seq < seq {
			return true
		}
	}
	return false
}

// queuedLen returns the number of queued envelopes.
func (o *outbox) queuedLen() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.queued
}

// queuedUpTo returns the queued envelopes written before seq, in the
// order they were written.
func (o *outbox) queuedUpTo(seq uint64) []*keptEnvelope {
	o.mu.Lock()
	var ks []*keptEnvelope
	if o.queued > 0 {
		for _, k := range o.pending {
			if k.queued && k.seq < seq {
				ks = append(ks, k)
			}
		}
	}
	o.mu.Unlock()
	slices.SortFunc(ks, func(a, b *keptEnvelope) int {
		return cmp.Or(cmp.Compare(a.seq, b.seq), a.id.Compare(b.id))
	})
	return ks
}

// remove deletes the envelope with ID id from the outbox. The directory is
// not synced: should the removal be lost in a crash, the envelope is sent
// again, and the edge drops it as a duplicate within its window.
func (o *outbox) remove(id message.ID) {
	if err := os.Remove(o.file(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		o.log.Error("outbox: cannot remove an acknowledged envelope; it will be sent again", logKeyFile, o.file(id), message.LogKeyError, err)
	}
	o.forget(id)
}

// forget drops the envelope with ID id from the pending ones.
func (o *outbox) forget(id message.ID) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if k, ok := o.pending[id]; ok {
		if k.queued {
			o.queued--
		}
		delete(o.pending, id)
	}
}

// refused sets the envelope with ID id aside, because the edge refused it
// for good, so that it does not stop the device at every start.
func (o *outbox) refused(id message.ID, why error) {
	o.setAside(o.file(id), why)
	o.forget(id)
}

// setAside renames file to a free name ending in .bad, logging why.
func (o *outbox) setAside(file string, why error) {
	to := file + outboxBadExt
	for i := 1; ; i++ {
		if _, err := os.Lstat(to); errors.Is(err, fs.ErrNotExist) {
			break
		}
		to = file + "." + strconv.Itoa(i) + outboxBadExt
	}
	if err := os.Rename(file, to); err != nil {
		o.log.Error("outbox: unusable file, and it cannot be set aside", logKeyFile, file, "reason", why.Error(), message.LogKeyError, err)
		return
	}
	o.log.Error("outbox: unusable file set aside", logKeyFile, file, "moved_to", to, "reason", why.Error())
}

// len returns the number of envelopes waiting in the outbox.
func (o *outbox) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.pending)
}

// file returns the path of the .msg file of the envelope with ID id.
func (o *outbox) file(id message.ID) string {
	return filepath.Join(o.path, id.String()+outboxMsgExt)
}

// close closes the directory and releases the lock. Later puts fail.
func (o *outbox) close() {
	o.dir.Close()
	o.lock.Close()
}
