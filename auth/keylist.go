package auth

// KeyList is the body of GET and PUT /v1/keys: the control plane's
// replicated keys, the first private one signing and all verifying. PUT
// takes private keys (Key.Secret, the seeds operators upload to rotate);
// GET answers every key as a public Key (ID and Public only, never a
// seed), which appliances fetch to verify tokens signed with keys added
// after their key file was written. It lives here, beside Key, because the
// root package cannot import auth.
type KeyList struct {
	Keys []Key `json:"keys"`
}
