package auth

// KeyList is the body of GET and PUT /v1/keys: the control plane's
// replicated signing keys, the first signing and all verifying. Appliances
// fetch it to verify tokens signed with keys added after their key file
// was written. It lives here, beside Key, because the root package cannot
// import auth.
type KeyList struct {
	Keys []Key `json:"keys"`
}
