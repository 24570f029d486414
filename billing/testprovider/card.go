package testprovider

import (
	"fmt"

	"github.com/fillcast/fillcast/billing"
)

// ErrInvalidCard is wrapped by every error about a card number that is not
// a card number at all: not 13 to 19 digits, or failing the Luhn check.
var ErrInvalidCard = billing.ErrInvalidCard

// The test cards, as the test modes of payment processors define them.
const (
	cardSucceeds       = "4242424242424242"
	cardDeclined       = "4000000000000002"
	cardDeclineCharges = "4000000000000341"
)

// behavior is what a stored payment method does when charged. It is all
// that is kept of the number besides brand and last four digits.
type behavior string

const (
	behaviorSucceeds       behavior = "succeeds"
	behaviorDeclineCharges behavior = "declines_charges"
)

// cardInfo is what the parser keeps of a number: never the number itself.
type cardInfo struct {
	brand string
	last4 string
}

// parseCard checks that number is 13 to 19 ASCII digits passing the Luhn
// check and returns its brand and last four digits. Errors never contain
// the number.
func parseCard(number string) (cardInfo, error) {
	if n := len(number); n < 13 || n > 19 {
		return cardInfo{}, fmt.Errorf("%w: a card number has 13 to 19 digits, this one has %d characters; check the number and try again", ErrInvalidCard, n)
	}
	sum := 0
	for i := 0; i < len(number); i++ {
		c := number[len(number)-1-i]
		if c < '0' || c > '9' {
			return cardInfo{}, fmt.Errorf("%w: a card number has only digits, without spaces or dashes; check the number and try again", ErrInvalidCard)
		}
		d := int(c - '0')
		if i%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	if sum%10 != 0 {
		return cardInfo{}, fmt.Errorf("%w: the number fails its check digit (a typing error?); check the number and try again", ErrInvalidCard)
	}
	return cardInfo{brand: brandOf(number), last4: number[len(number)-4:]}, nil
}

// brandOf names the card network from the leading digits (the issuer
// identification number); "unknown" when it is none of those the test
// provider knows.
func brandOf(number string) string {
	switch {
	case number[0] == '4':
		return "visa"
	case number[0] == '5' && number[1] >= '1' && number[1] <= '5':
		return "mastercard"
	case number[0] == '3' && (number[1] == '4' || number[1] == '7'):
		return "amex"
	}
	return "unknown"
}
