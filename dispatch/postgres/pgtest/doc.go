// Package pgtest gives tests a fresh PostgreSQL database of their own on
// the test server (DSN gives it; TestURLEnv overrides the server). It is
// imported only by tests, so it is never linked into lifelined: the
// server binary carries no testing code.
package pgtest
