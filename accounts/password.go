package accounts

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2 are argon2id's cost parameters. The defaults are OWASP's first
// recommendation for argon2id (19 MiB, two passes, one lane), which keeps
// a sign-in near 30 ms on one core of a 2020s server.
type Argon2 struct {
	// MemoryKiB is the memory cost in KiB. Zero means 19456 (19 MiB).
	MemoryKiB uint32
	// Time is the number of passes. Zero means 2.
	Time uint32
	// Threads is the parallelism. Zero means 1.
	Threads uint8
}

func (p Argon2) withDefaults() Argon2 {
	if p.MemoryKiB == 0 {
		p.MemoryKiB = 19456
	}
	if p.Time == 0 {
		p.Time = 2
	}
	if p.Threads == 0 {
		p.Threads = 1
	}
	return p
}

const (
	saltLen = 16
	keyLen  = 32
)

// b64 is the PHC string format's base64: standard alphabet, no padding.
var b64 = base64.RawStdEncoding

// HashPassword returns the argon2id hash of password in the PHC string
// format, "$argon2id$v=19$m=…,t=…,p=…$salt$key", with a random salt.
func (p Argon2) HashPassword(password string) string {
	p = p.withDefaults()
	salt := make([]byte, saltLen)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// errBadHash is a stored hash this package did not write.
var errBadHash = errors.New("accounts: malformed password hash")

// maxHashMemoryKiB bounds the memory a stored hash may ask for, so a
// corrupt or hostile record cannot make a sign-in allocate gigabytes.
const maxHashMemoryKiB = 1 << 18

// PasswordMatches reports whether password hashes to hash, with the
// parameters stored in hash, comparing in constant time.
func PasswordMatches(hash, password string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return false, errBadHash
	}
	var m, t uint32
	var th uint8
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &th); err != nil || n != 3 || m == 0 || m > maxHashMemoryKiB || t == 0 || t > 16 || th == 0 {
		return false, errBadHash
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return false, errBadHash
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) < 16 || len(want) > 64 {
		return false, errBadHash
	}
	got := argon2.IDKey([]byte(password), salt, t, m, th, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
