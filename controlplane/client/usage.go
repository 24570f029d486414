package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/fillcast/fillcast"
)

// ReportUsage posts an appliance's usage summary of one interval
// (POST /v1/appliances/{u.Appliance}/usage), which the control plane
// answers 202. The control plane counts a summary once per u.ID, so a
// summary sent twice is no harm: like a heartbeat, it goes on to the next
// node after any failure, and like a read it is retried when every node
// failed (see the package doc); the caller may send it again later. A
// summary that does not pass u.Validate is not sent: the control plane
// would refuse it.
func (c *Client) ReportUsage(ctx context.Context, u *fillcast.Usage) error {
	if err := u.Validate(); err != nil {
		return fmt.Errorf("client: report usage: %w", err)
	}
	r := c.request(http.MethodPost, "/v1/appliances/"+url.PathEscape(u.Appliance)+"/usage")
	r.resend, r.idempotent = true, true
	return c.send(ctx, r, u, nil)
}
