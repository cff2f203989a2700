// Package groupcommit is the group commit both durable stores use for
// position history: concurrent writers hand their fixes to a few writer
// goroutines, each of which commits everything waiting in one transaction,
// so that one fsync acknowledges many calls and each call returns only
// once its own rows are committed.
package groupcommit
