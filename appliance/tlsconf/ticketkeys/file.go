package ticketkeys

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// KeySize is the size of a key: tls.Config.SetSessionTicketKeys derives
// the ticket's AES and HMAC keys from it.
const KeySize = 32

// MaxFileBytes bounds a key file: a day of hourly keys takes 2 KiB.
const MaxFileBytes = 64 << 10

// Key is one session ticket key.
type Key struct {
	// Created is when the key begins (or began) to encrypt tickets: a key
	// dated in the future only decrypts until then, so that every
	// process sharing the file has it before any ticket needs it.
	Created time.Time
	// Secret is the key. Never log it.
	Secret [KeySize]byte
}

// fileHeader opens every file Format writes.
const fileHeader = "# fillcast TLS session ticket keys: one \"<date, RFC 3339> <32 bytes as 64 hex digits>\" a line.\n" +
	"# The newest key dated no later than now encrypts new tickets; every key decrypts. Keep this file 0600.\n"

// Parse reads a key file: one key a line, "<date> <key>", the date in RFC
// 3339 and the key as 64 hex digits; blank lines and lines starting with
// "#" are ignored. The keys come back newest first. A problem names the
// line but never quotes a key.
func Parse(b []byte) ([]Key, error) {
	keys, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("ticketkeys: %w", err)
	}
	return keys, nil
}

func parse(b []byte) ([]Key, error) {
	if len(b) > MaxFileBytes {
		return nil, fmt.Errorf("%d bytes: a key file holds at most %d", len(b), MaxFileBytes)
	}
	var keys []Key
	for n, line := range bytes.Split(b, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		k, err := parseLine(string(line))
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n+1, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no key in the file: want at least one \"<date, RFC 3339> <64 hex digits>\" line")
	}
	sortNewestFirst(keys)
	return keys, nil
}

func parseLine(line string) (Key, error) {
	date, secret, ok := strings.Cut(line, " ")
	secret = strings.TrimSpace(secret)
	if !ok || strings.ContainsAny(secret, " \t") {
		return Key{}, errors.New("want \"<date, RFC 3339> <key, 64 hex digits>\"")
	}
	var k Key
	t, err := time.Parse(time.RFC3339, date)
	if err != nil {
		return Key{}, fmt.Errorf("date: want RFC 3339 such as 2026-01-02T15:04:05Z (%d characters given)", len(date))
	}
	if k.Created = t.UTC(); k.Created.Year() < 1970 || k.Created.Year() > 9999 {
		return Key{}, errors.New("date: want a year between 1970 and 9999")
	}
	if len(secret) != 2*KeySize {
		return Key{}, fmt.Errorf("key: %d characters, want %d hex digits (a %d-byte key; truncated?)", len(secret), 2*KeySize, KeySize)
	}
	if _, err := hex.Decode(k.Secret[:], []byte(secret)); err != nil {
		return Key{}, errors.New("key: not hex digits")
	}
	if k.Secret == ([KeySize]byte{}) {
		return Key{}, errors.New("key: all zeros, which is no secret: generate one with openssl rand -hex 32")
	}
	return k, nil
}

// Format writes keys in the form Parse reads, newest first.
func Format(keys []Key) []byte {
	keys = slices.Clone(keys)
	sortNewestFirst(keys)
	var b bytes.Buffer
	b.WriteString(fileHeader)
	for _, k := range keys {
		b.WriteString(k.Created.UTC().Format(time.RFC3339))
		b.WriteByte(' ')
		b.WriteString(hex.EncodeToString(k.Secret[:]))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func sortNewestFirst(keys []Key) {
	slices.SortStableFunc(keys, func(a, b Key) int { return b.Created.Compare(a.Created) })
}

// active is the index of the key that encrypts at now: the newest dated
// no later than now, or, when all are dated later (a clock set back),
// the oldest. keys are newest first.
func active(keys []Key, now time.Time) int {
	for i, k := range keys {
		if !k.Created.After(now) {
			return i
		}
	}
	return len(keys) - 1
}

// plan returns the keys a rotating owner writes at now: a new key dated
// now+lead once the newest is older than every (dated now in a new
// file), and without the keys whose
// successor began to encrypt lifetime ago or more (every ticket they
// encrypted is that old). changed reports whether the list differs.
func plan(keys []Key, now time.Time, every, lifetime, lead time.Duration, fresh func() ([KeySize]byte, error)) (out []Key, changed bool, err error) {
	out = slices.Clone(keys)
	if len(out) == 0 || !now.Before(out[0].Created.Add(every)) {
		secret, err := fresh()
		if err != nil {
			return nil, false, err
		}
		created := now.Add(lead) // every reader has it before it encrypts
		if len(out) == 0 {
			created = now // a new file: nobody has another key
		}
		out = slices.Insert(out, 0, Key{Created: created.Truncate(time.Second), Secret: secret})
		changed = true
	}
	for i := 1; i < len(out); i++ {
		if !now.Before(out[i-1].Created.Add(lifetime)) {
			return out[:i], true, nil
		}
	}
	return out, changed, nil
}
