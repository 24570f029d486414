package pgstore

import "github.com/fillcast/fillcast/internal/pgdb"

// schema is the billing tables. Its version table and lock key are those
// of the databases already made: never change them. The lock key differs
// from accounts/pgstore's ("fillacct"), so that the two stores' migrations
// on one database need not wait for each other.
var schema = pgdb.Schema{
	Name:         "billing schema",
	VersionTable: "billing_schema_version",
	LockKey:      0x66696c6c_62696c6c, // "fillbill"
	Migrations:   migrations,
}

// migrations are the schema's versions: migrations[i] takes a database
// from version i to i+1. Append; never edit one that has shipped.
//
// Ids and accounts are COLLATE "C" so that lists order them bytewise, as
// the replicated store does, whatever the database's locale. An entry
// without an invoice (a credit) has the empty string for one, not NULL,
// so that the unique index on (kind, invoice, idempotency_key) covers it
// too.
var migrations = []string{
	`CREATE TABLE billing_subscriptions (
		id      text COLLATE "C" PRIMARY KEY,
		account text COLLATE "C" NOT NULL,
		status  text NOT NULL,
		due_at  timestamptz,
		created timestamptz NOT NULL,
		version bigint NOT NULL,
		doc     jsonb NOT NULL
	);
	CREATE UNIQUE INDEX billing_subscriptions_live ON billing_subscriptions (account) WHERE status <> 'canceled';
	CREATE INDEX billing_subscriptions_account ON billing_subscriptions (account, created);
	CREATE INDEX billing_subscriptions_due ON billing_subscriptions (due_at, id) WHERE due_at IS NOT NULL;
	CREATE TABLE billing_invoices (
		id      text COLLATE "C" PRIMARY KEY,
		account text COLLATE "C" NOT NULL,
		number  text UNIQUE,
		created timestamptz NOT NULL,
		doc     jsonb NOT NULL
	);
	CREATE INDEX billing_invoices_account ON billing_invoices (account, created DESC, id);
	CREATE TABLE billing_invoice_numbers (
		year integer PRIMARY KEY,
		last bigint NOT NULL
	);
	CREATE TABLE billing_entries (
		seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		at              timestamptz NOT NULL,
		account         text COLLATE "C" NOT NULL,
		invoice         text COLLATE "C" NOT NULL,
		kind            text NOT NULL,
		amount          bigint NOT NULL,
		currency        text NOT NULL,
		charge_id       text NOT NULL,
		idempotency_key text NOT NULL,
		CONSTRAINT billing_entries_once UNIQUE (kind, invoice, idempotency_key)
	);
	CREATE TABLE billing_requests (
		account text COLLATE "C" NOT NULL,
		key     text NOT NULL,
		hash    text NOT NULL,
		status  integer NOT NULL,
		body    bytea NOT NULL,
		created timestamptz NOT NULL,
		PRIMARY KEY (account, key)
	);
	CREATE INDEX billing_requests_created ON billing_requests (created);`,
}

// ledgerLock is the advisory lock that makes the changes that append
// ledger entries take turns from taking their Seq to committing (see the
// package comment).
const ledgerLock = 0x66696c6c_6c656467 // "fillledg"
