package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/lifeline-ems/lifeline/dispatch"
)

// runAudit is `lifelined audit verify`: it reads the whole audit log from
// the store the server uses and checks its hash chain, naming the first
// edited, inserted or deleted entry. It prints the head (last seq and
// hash): a chain cannot show that entries were cut off its end, so
// compare the head with one recorded elsewhere (the server logs it at
// every start).
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return fmt.Errorf("usage: lifelined audit verify [--data-dir DIR | --postgres-url DSN]")
	}
	rec, err := openRecordFlags(ctx, "lifelined audit verify", args[1:], stderr, nil)
	if err != nil {
		return err
	}
	defer rec.Close()
	n, head, err := verifyAudit(ctx, rec)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "audit log intact: %d entries; head seq %d hash %s\n", n, head.Seq, head.Hash)
	return nil
}

// runAdmin is `lifelined admin reset-password [--user admin]`: the way back
// in when the administrator's one-time password is lost. It needs what the
// server needs (the data directory or the database), which is the proof of
// being the operator; the reset is in the audit log. It ends every session
// of the user in the store: a running server refuses the old tokens at
// once, and its live feeds close at their next session check (every 5 s),
// since this process cannot reach the server's event bus.
func runAdmin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "reset-password" {
		return fmt.Errorf("usage: lifelined admin reset-password [--user NAME] [--data-dir DIR | --postgres-url DSN] [--area FILE]")
	}
	var user, areaFile string
	rec, err := openRecordFlags(ctx, "lifelined admin reset-password", args[1:], stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&user, "user", dispatch.AdminUsername, "whose password to reset")
		fs.StringVar(&areaFile, "area", "", "area file the server uses (default: the built-in demo)")
	})
	if err != nil {
		return err
	}
	defer rec.Close()
	area, err := loadArea(areaFile)
	if err != nil {
		return err
	}
	acc, err := dispatch.NewAccess(dispatch.AccessConfig{Users: rec, Auditor: rec, Area: area, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	operator := dispatch.Principal{Name: "operator", Role: dispatch.RoleAdmin}
	pw, err := acc.ResetPassword(ctx, operator, user)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "new password for %s (shown once): %s\n", user, pw)
	return nil
}

// runBackup is `lifelined backup --to FILE`: a consistent copy of the
// embedded store, taken while the server runs. PostgreSQL has its own
// tools (pg_dump, or pgBackRest for point-in-time recovery).
func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var to string
	rec, err := openRecordFlags(ctx, "lifelined backup", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&to, "to", "", "file to write the copy to (must not exist)")
	})
	if err != nil {
		return err
	}
	defer rec.Close()
	db, ok := rec.(sqliteRecord)
	if !ok {
		return fmt.Errorf("lifelined backup copies the embedded store; for PostgreSQL use pg_dump or pgBackRest (docs/STORAGE.md)")
	}
	if to == "" {
		return fmt.Errorf("usage: lifelined backup --to FILE [--data-dir DIR]")
	}
	if err := db.Backup(ctx, to); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up to %s\n", to)
	return nil
}

// openRecordFlags parses the store flags (and extra ones) of a subcommand,
// with the same LIFELINE_ environment as the server, and opens the record.
func openRecordFlags(ctx context.Context, name string, args []string, stderr io.Writer, extra func(*flag.FlagSet)) (record, error) {
	c := DefaultConfig()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "embedded store location")
	fs.StringVar(&c.PostgresURL, "postgres-url", c.PostgresURL, "PostgreSQL DSN")
	if extra != nil {
		extra(fs)
	}
	for _, name := range []string{"data-dir", "postgres-url"} {
		if v, ok := lookup(nil, envName(name)); ok {
			_ = fs.Set(name, v)
		}
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return openRecord(ctx, c, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

// verifyAudit checks the whole log and returns its length and last entry.
func verifyAudit(ctx context.Context, a dispatch.Auditor) (int, dispatch.AuditEntry, error) {
	entries, err := a.AuditLog(ctx, 0, 0)
	if err != nil {
		return 0, dispatch.AuditEntry{}, fmt.Errorf("read the audit log: %w", err)
	}
	if len(entries) == 0 {
		return 0, dispatch.AuditEntry{}, errors.New("the audit log is empty: a server that has started has at least its first administrator")
	}
	if err := dispatch.VerifyAudit(entries); err != nil {
		return 0, dispatch.AuditEntry{}, err
	}
	return len(entries), entries[len(entries)-1], nil
}
