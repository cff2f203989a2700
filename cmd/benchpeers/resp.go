package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// resp is a minimal RESP2 client, enough to load and query Tile38 and
// Redis: commands out as arrays of bulk strings, replies read whole.
type resp struct {
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
}

func dialRESP(addr string) (*resp, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &resp{conn: c, r: bufio.NewReaderSize(c, 64<<10), w: bufio.NewWriterSize(c, 64<<10)}, nil
}

func (c *resp) Close() error { return c.conn.Close() }

// send buffers a command; flush sends what is buffered.
func (c *resp) send(args ...string) {
	c.w.WriteByte('*')
	c.w.WriteString(strconv.Itoa(len(args)))
	c.w.WriteString("\r\n")
	for _, a := range args {
		c.w.WriteByte('$')
		c.w.WriteString(strconv.Itoa(len(a)))
		c.w.WriteString("\r\n")
		c.w.WriteString(a)
		c.w.WriteString("\r\n")
	}
}

func (c *resp) flush() error { return c.w.Flush() }

// do sends one command and reads its reply.
func (c *resp) do(args ...string) (any, error) {
	c.send(args...)
	if err := c.flush(); err != nil {
		return nil, err
	}
	return c.read()
}

// read reads one reply: a string, an int64, nil, a []any, or an error
// reply as a Go error.
func (c *resp) read() (any, error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 {
		return nil, fmt.Errorf("resp: short line %q", line)
	}
	body := string(line[1 : len(line)-2])
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return nil, errors.New(body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, b); err != nil {
			return nil, err
		}
		return string(b[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = c.read(); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("resp: unexpected reply %q", line)
}

// pipeline sends the commands in chunks and reads every reply, failing on
// the first error reply.
func (c *resp) pipeline(cmds [][]string) error {
	const chunk = 1000
	for i := 0; i < len(cmds); i += chunk {
		batch := cmds[i:min(i+chunk, len(cmds))]
		for _, cmd := range batch {
			c.send(cmd...)
		}
		if err := c.flush(); err != nil {
			return err
		}
		for range batch {
			if _, err := c.read(); err != nil {
				return err
			}
		}
	}
	return nil
}
