// Package apicall is the benchmarks' one way to call the Fillcast API:
// a JSON body, a bearer token, and the answer decoded when its status is
// the one wanted.
package apicall

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// Call sends body as JSON (a []byte as it is) with the bearer token and
// decodes the answer into out when its status is want.
func Call(ctx context.Context, client *http.Client, method, u string, body any, token string, want int, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, ok := body.([]byte)
		if !ok {
			var err error
			if b, err = json.Marshal(body); err != nil {
				return 0, err
			}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode != want {
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s, want %d", method, u, resp.StatusCode, bytes.TrimSpace(b), want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w", method, u, err)
		}
	}
	return resp.StatusCode, nil
}

// SignUp creates a viewer account of email and password on plan at the
// API base, signs in, and returns the session token.
func SignUp(ctx context.Context, client *http.Client, base, email, password, plan string) (string, error) {
	acct := map[string]string{"email": email, "password": password, "plan": plan}
	if _, err := Call(ctx, client, "POST", base+"/v1/accounts", acct, "", http.StatusCreated, nil); err != nil {
		return "", err
	}
	var s struct {
		Token string `json:"token"`
	}
	_, err := Call(ctx, client, "POST", base+"/v1/sessions", map[string]string{"email": email, "password": password}, "", http.StatusCreated, &s)
	return s.Token, err
}
