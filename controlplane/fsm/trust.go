package fsm

import (
	"encoding/hex"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
)

// APIKey is an operator's API key as stored: its hash, never the key.
type APIKey struct {
	ID      string    `json:"id"`
	Name    string    `json:"name,omitempty"`
	Scope   string    `json:"scope"`
	Hash    string    `json:"hash"`
	Created time.Time `json:"created"`
}

// Registration is an appliance an operator registered: where it may say
// it is, and the hash of the credential it was given.
type Registration struct {
	ID      string   `json:"id"`
	Site    string   `json:"site"`
	Profile string   `json:"profile"`
	URLs    []string `json:"urls"`
	// CredentialHash is auth.HashSecret of the appliance's credential.
	CredentialHash string    `json:"credential_hash"`
	Registered     time.Time `json:"registered"`
}

// AllowsURL reports whether the appliance may advertise u.
func (r *Registration) AllowsURL(u string) bool {
	for _, have := range r.URLs {
		if have == u {
			return true
		}
	}
	return false
}

// maxRegisteredURLs bounds a registration's URL list.
const maxRegisteredURLs = 16

// ValidateAPIKey checks a key record.
func ValidateAPIKey(k *APIKey) error {
	if err := fillcast.ValidateTitleID(k.ID); err != nil {
		return invalid("api key id: %v", err)
	}
	if len(k.Name) > 200 {
		return invalid("api key name: longer than 200 bytes")
	}
	if _, err := auth.ParseScope(k.Scope); err != nil {
		return invalid("%v", err)
	}
	return validHash("api key", k.Hash)
}

// ValidateRegistration checks a registration record.
func ValidateRegistration(r *Registration) error {
	if len(r.URLs) == 0 || len(r.URLs) > maxRegisteredURLs {
		return invalid("urls: want 1 to %d", maxRegisteredURLs)
	}
	for _, u := range r.URLs {
		if err := ValidateAppliance(&Appliance{ID: r.ID, Site: r.Site, Profile: r.Profile, URL: u}); err != nil {
			return err
		}
	}
	return validHash("credential", r.CredentialHash)
}

func validHash(what, h string) error {
	if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
		return invalid("%s hash: want 64 hex characters", what)
	}
	return nil
}
