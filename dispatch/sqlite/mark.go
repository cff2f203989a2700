package sqlite

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
)

// MarkFile is the name of the sessions mark in the data directory: eight
// bytes that any process using the record (a server, lifelined admin)
// changes after it deletes a session or updates a user, so that a server
// learns, with one read of a small file instead of two queries, whether
// the sessions it remembers still stand (dispatch.SessionMarker).
const MarkFile = "sessions.mark"

// markSize is the mark's length: one uint64.
const markSize = 8

// mark is the sessions mark. It is read with pread on every remembered
// session, not mapped: a file cut short or a full disk must fail a read,
// never fault the server.
type mark struct {
	f      *os.File
	broken atomic.Uint64 // a fresh value for every read that fails
}

func openMark(dir string) (*mark, error) {
	path := filepath.Join(dir, MarkFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("sqlite: sessions mark: %w", err)
	}
	m := &mark{f: f}
	if st, err := f.Stat(); err != nil || st.Size() < markSize {
		err = m.move() // two processes doing it at once agree: it changed
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("sqlite: sessions mark %s: %w", path, err)
		}
	}
	return m, nil
}

// load reads the mark. When it cannot, it returns a value never returned
// before (its top bit set), so that nothing remembered is trusted.
func (m *mark) load() uint64 {
	var b [markSize]byte
	if _, err := m.f.ReadAt(b[:], 0); err != nil {
		return 1<<63 | m.broken.Add(1)
	}
	return binary.LittleEndian.Uint64(b[:]) &^ (1 << 63)
}

// move changes the mark to a fresh random value: any change tells the
// readers; a counter would need a read-modify-write between processes.
func (m *mark) move() error {
	var b [markSize]byte
	_, _ = rand.Read(b[:])
	_, err := m.f.WriteAt(b[:], 0)
	return err
}

// close closes the file; closing it again does nothing, as closing the
// DB again does nothing.
func (m *mark) close() error {
	err := m.f.Close()
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}
