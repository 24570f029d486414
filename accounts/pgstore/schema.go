package pgstore

import "github.com/fillcast/fillcast/internal/pgdb"

// schema is the accounts' tables. Its version table and lock key are
// those of the databases already made: never change them.
var schema = pgdb.Schema{
	Name:         "schema",
	VersionTable: "accounts_schema_version",
	LockKey:      0x66696c6c_61636374, // "fillacct"
	Migrations:   migrations,
}

// migrations are the schema's versions: migrations[i] takes a database
// from version i to i+1. Append; never edit one that has shipped.
//
// Ids are COLLATE "C" so that lists order them bytewise, as the embedded
// store does, whatever the database's locale. Profiles keep the order
// they were added in (seq): the first is the account's default.
var migrations = []string{
	`CREATE TABLE plans (
		id             text COLLATE "C" PRIMARY KEY,
		name           text NOT NULL,
		max_height     integer NOT NULL,
		max_streams    integer NOT NULL,
		downloads      boolean NOT NULL,
		price_amount   bigint NOT NULL,
		price_currency text NOT NULL,
		period         text NOT NULL
	);
	CREATE TABLE accounts (
		id            text COLLATE "C" PRIMARY KEY,
		email         text NOT NULL,
		password_hash text NOT NULL,
		plan          text COLLATE "C" NOT NULL,
		created       timestamptz NOT NULL,
		CONSTRAINT accounts_email_key UNIQUE (email),
		CONSTRAINT accounts_plan_fkey FOREIGN KEY (plan) REFERENCES plans (id)
	);
	CREATE TABLE profiles (
		account text COLLATE "C" NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
		id      text COLLATE "C" NOT NULL,
		seq     bigint GENERATED ALWAYS AS IDENTITY,
		name    text NOT NULL,
		kids    boolean NOT NULL,
		created timestamptz NOT NULL,
		PRIMARY KEY (account, id)
	);
	CREATE INDEX profiles_account_seq ON profiles (account, seq);
	CREATE TABLE sessions (
		id        text COLLATE "C" PRIMARY KEY,
		account   text COLLATE "C" NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
		hash      text NOT NULL,
		created   timestamptz NOT NULL,
		last_seen timestamptz NOT NULL
	);
	CREATE INDEX sessions_account ON sessions (account, last_seen);
	CREATE TABLE streams (
		account text COLLATE "C" NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
		id      text COLLATE "C" NOT NULL,
		profile text NOT NULL,
		title   text NOT NULL,
		started timestamptz NOT NULL,
		renewed timestamptz NOT NULL,
		PRIMARY KEY (account, id)
	);`,
	// A plan's free trial for new accounts; NULL is the service's default.
	`ALTER TABLE plans ADD COLUMN trial_days integer`,
}
