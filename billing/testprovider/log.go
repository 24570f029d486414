package testprovider

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/billing"
)

// The log: opening and replaying it, appending to it, and its records.

// openLocked opens and replays the log unless it is open already.
func (p *Provider) openLocked() (err error) {
	if p.closed {
		return ErrClosed
	}
	if p.f != nil {
		return p.broken
	}
	if err := os.MkdirAll(p.cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("testprovider: open: %w", err)
	}
	path := filepath.Join(p.cfg.Dir, LogName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("testprovider: open: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	if err := lockFile(f); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInUse, path, err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("testprovider: read %s: %w", path, err)
	}
	st, good, err := replay(data)
	if err != nil {
		return fmt.Errorf("testprovider: replay %s: %w", path, err)
	}
	if good < len(data) {
		// A torn last line: the crash interrupted its write, so its call
		// never returned and nobody was told of it.
		if err := f.Truncate(int64(good)); err != nil {
			return fmt.Errorf("testprovider: truncate torn record in %s: %w", path, err)
		}
	}
	if _, err := f.Seek(int64(good), io.SeekStart); err != nil {
		return fmt.Errorf("testprovider: open %s: %w", path, err)
	}
	// Make the file's existence, size and any truncation durable before
	// the first record is acknowledged.
	if err := f.Sync(); err != nil {
		return fmt.Errorf("testprovider: sync %s: %w", path, err)
	}
	if err := syncDir(p.cfg.Dir); err != nil {
		return fmt.Errorf("testprovider: sync %s: %w", p.cfg.Dir, err)
	}
	p.f, p.methods, p.charges = f, st.methods, st.charges
	return nil
}

// appendLocked writes rec as one line and fsyncs it. A failure leaves the
// log's tail unknown, so the provider refuses further calls until it is
// closed and opened again, when the replay sorts it out.
func (p *Provider) appendLocked(rec record) error {
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("testprovider: encode record: %w", err)
	}
	line = append(line, '\n')
	if _, err := p.f.Write(line); err != nil {
		p.broken = fmt.Errorf("testprovider: log write failed earlier, close and reopen the provider: %w", err)
		return fmt.Errorf("testprovider: write log: %w", err)
	}
	if err := p.f.Sync(); err != nil {
		p.broken = fmt.Errorf("testprovider: log sync failed earlier, close and reopen the provider: %w", err)
		return fmt.Errorf("testprovider: sync log: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// The log's records. The file format is owned here, with its own JSON
// names, so that it does not change with package billing's types.

const (
	kindPaymentMethod = "payment_method"
	kindCharge        = "charge"
)

type record struct {
	Kind          string        `json:"kind"`
	PaymentMethod *pmRecord     `json:"payment_method,omitempty"`
	Charge        *chargeRecord `json:"charge,omitempty"`
}

type pmRecord struct {
	ID       string   `json:"id"`
	Customer string   `json:"customer"`
	Brand    string   `json:"brand"`
	Last4    string   `json:"last4"`
	Behavior behavior `json:"behavior"`
}

func (m pmRecord) paymentMethod() billing.PaymentMethod {
	return billing.PaymentMethod{ID: m.ID, Customer: m.Customer, Brand: m.Brand, Last4: m.Last4}
}

type chargeRecord struct {
	ID             string               `json:"id"`
	IdempotencyKey string               `json:"idempotency_key"`
	RequestHash    string               `json:"request_hash"`
	Customer       string               `json:"customer"`
	PaymentMethod  string               `json:"payment_method"`
	Amount         int64                `json:"amount"`
	Currency       string               `json:"currency"`
	Status         billing.ChargeStatus `json:"status"`
	DeclineReason  string               `json:"decline_reason,omitempty"`
	Created        time.Time            `json:"created"`
}

func (c chargeRecord) charge() billing.Charge {
	return billing.Charge{
		ID:             c.ID,
		IdempotencyKey: c.IdempotencyKey,
		Customer:       c.Customer,
		PaymentMethod:  c.PaymentMethod,
		Amount:         accounts.Money{Amount: c.Amount, Currency: c.Currency},
		Status:         c.Status,
		DeclineReason:  c.DeclineReason,
		Created:        c.Created,
	}
}

type state struct {
	methods map[string]pmRecord
	charges map[string]chargeRecord
}

// replay rebuilds the state from the log's contents and returns how many
// bytes of it are whole records. An unterminated last line is a torn write
// and is left out; any other bad line is corruption and an error.
func replay(data []byte) (state, int, error) {
	st := state{methods: map[string]pmRecord{}, charges: map[string]chargeRecord{}}
	off, line := 0, 1
	for off < len(data) {
		n := bytes.IndexByte(data[off:], '\n')
		if n < 0 {
			break
		}
		if err := st.apply(data[off : off+n]); err != nil {
			return state{}, 0, fmt.Errorf("line %d: %w", line, err)
		}
		off += n + 1
		line++
	}
	return st, off, nil
}

func (st *state) apply(line []byte) error {
	var rec record
	if err := json.Unmarshal(line, &rec); err != nil {
		return fmt.Errorf("corrupt record: %w", err)
	}
	switch rec.Kind {
	case kindPaymentMethod:
		m := rec.PaymentMethod
		if m == nil || m.ID == "" || (m.Behavior != behaviorSucceeds && m.Behavior != behaviorDeclineCharges) {
			return errors.New("corrupt payment method record")
		}
		if _, dup := st.methods[m.ID]; dup {
			return fmt.Errorf("payment method %q recorded twice", m.ID)
		}
		st.methods[m.ID] = *m
	case kindCharge:
		c := rec.Charge
		if c == nil || c.ID == "" || c.IdempotencyKey == "" {
			return errors.New("corrupt charge record")
		}
		if _, dup := st.charges[c.IdempotencyKey]; dup {
			return fmt.Errorf("idempotency key %q recorded twice", c.IdempotencyKey)
		}
		st.charges[c.IdempotencyKey] = *c
	default:
		return fmt.Errorf("unknown record kind %q", rec.Kind)
	}
	return nil
}
