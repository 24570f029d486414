package accounts_test

import (
	"strings"
	"testing"

	"github.com/fillcast/fillcast/accounts"
)

// FuzzPasswordMatches: a stored hash is parsed before it is used; no
// input may panic or ask for unbounded memory, and a hash this package
// wrote matches its password and no other.
func FuzzPasswordMatches(f *testing.F) {
	good := cheap.HashPassword("correct horse battery")
	f.Add(good, "correct horse battery")
	f.Add(good, "wrong")
	f.Add("$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5", "x")
	f.Add("$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5", "x")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, hash, password string) {
		ok, err := accounts.PasswordMatches(hash, password)
		if ok && err != nil {
			t.Fatalf("matched with an error: %v", err)
		}
		if hash == good && ok != (password == "correct horse battery") {
			t.Fatalf("PasswordMatches(good, %q) = %v", password, ok)
		}
	})
}

// FuzzNormalizeEmail: a normalised email is lower case, normalises to
// itself, and never holds a display name or spaces.
func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{"ann@example.com", " Ann@Example.COM ", "Ann <ann@example.com>", "a@b", "a@@b.c", "\"a b\"@example.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := accounts.NormalizeEmail(s)
		if err != nil {
			return
		}
		if e != strings.ToLower(e) || strings.ContainsAny(e, " <>\t\r\n") || len(e) > accounts.MaxEmailLen {
			t.Fatalf("NormalizeEmail(%q) = %q", s, e)
		}
		if again, err := accounts.NormalizeEmail(e); err != nil || again != e {
			t.Fatalf("NormalizeEmail(%q) = %q, then %q, %v", s, e, again, err)
		}
	})
}
