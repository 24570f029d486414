package testprovider

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/billing"
)

// The log's records and the state they replay to. The file format is owned
// here, with its own JSON names, so that it does not change with package
// billing's types.

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

// state is what the log's lines replay to.
type state struct {
	methods map[string]pmRecord
	charges map[string]chargeRecord // by idempotency key
	lines   int                     // lines applied, so that an error can name the bad one
}

func newState() state {
	return state{methods: map[string]pmRecord{}, charges: map[string]chargeRecord{}}
}

// applyLines applies the whole lines of data, a piece of the log that
// starts where the lines already applied end, and returns how many bytes
// those lines take. An unterminated last line is left out: it is either
// torn or, when data is only a piece of what is there, continued beyond
// data. A bad line stops it with an error naming the line; the lines before
// it stay applied, and are counted in the bytes returned.
func (st *state) applyLines(data []byte) (int, error) {
	off := 0
	for {
		n := bytes.IndexByte(data[off:], '\n')
		if n < 0 {
			return off, nil
		}
		if err := st.apply(data[off : off+n]); err != nil {
			return off, fmt.Errorf("line %d: %w", st.lines+1, err)
		}
		st.lines++
		off += n + 1
	}
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
