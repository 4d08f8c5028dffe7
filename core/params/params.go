// Package params reads a request's parameters from the places the Alibaba
// RPC style allows them (query string, form body, JSON object) into one set
// of strings, refusing input that is ambiguous or of the wrong type.
package params

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Set maps parameter names (case-sensitive) to values.
type Set map[string]string

// Get returns the value of name, "" when it is absent.
func (s Set) Get(name string) string { return s[name] }

// Error says why the parameters could not be read; its text is for the caller.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

func errorf(format string, args ...any) error { return &Error{Msg: fmt.Sprintf(format, args...)} }

// typed lists the parameters whose JSON type we check: the operation's own
// and the two common parameters we act on. Anything else is ignored whatever
// its type, so that extra fields in an event do not break a request.
var typed = map[string]bool{
	"Action": true, "Format": true,
	"CommonName": true, "SANs": true, "Organization": true, "OrganizationUnit": true,
	"Country": true, "State": true, "City": true, "Email": true, "KeyAlgorithm": true,
}

// listParams may also be given as a JSON array of strings; the items are
// joined with commas, the list separator of the string form.
var listParams = map[string]bool{"SANs": true}

// put adds name=value, refusing a second, different value for the same name.
func (s Set) put(name, value, where string) error {
	if old, ok := s[name]; ok && old != value {
		return errorf("The parameter %q is given more than once with different values (%s).", truncate(name), where)
	}
	s[name] = value
	return nil
}

// FromQuery parses a URL query string (or a form-urlencoded body).
func FromQuery(raw, where string) (Set, error) {
	s := Set{}
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		if strings.Contains(pair, ";") {
			return nil, errorf("The %s holds a semicolon; separate parameters with '&'.", where)
		}
		k, v, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return nil, errorf("The %s is not valid URL encoding near %q.", where, truncate(k))
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return nil, errorf("The %s is not valid URL encoding in parameter %q.", where, truncate(key))
		}
		if err := s.put(key, val, where); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// FromJSON parses a JSON object. Values of the parameters we use must be
// strings (SANs may also be an array of strings); null means absent.
func FromJSON(body []byte) (Set, error) {
	// encoding/json would quietly turn invalid UTF-8 into U+FFFD.
	if !utf8.Valid(body) {
		return nil, errorf("The body is not valid UTF-8.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	// Numbers stay text: parsing one into a float64 fails for a huge
	// number with an error that quotes all of it.
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, errorf("The body is not valid JSON: %s.", jsonReason(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errorf("The body must be a JSON object of parameters.")
	}
	s := Set{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errorf("The body is not valid JSON: %s.", jsonReason(err))
		}
		key := tok.(string) // object keys are always strings
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, errorf("The body is not valid JSON: %s.", jsonReason(err))
		}
		if !typed[key] {
			continue
		}
		val, present, err := jsonValue(key, raw)
		if err != nil {
			return nil, err
		}
		if present {
			if err := s.put(key, val, "JSON body"); err != nil {
				return nil, err
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, errorf("The body is not valid JSON: %s.", jsonReason(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errorf("The body holds data after the JSON object.")
	}
	return s, nil
}

func jsonValue(key string, raw json.RawMessage) (val string, present bool, err error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case bytes.Equal(raw, []byte("null")):
		return "", false, nil
	case raw[0] == '"':
		var v string
		if err := json.Unmarshal(raw, &v); err != nil || loneSurrogate(raw, v) {
			return "", false, errorf("The value of parameter %q is not a valid JSON string.", key)
		}
		return v, true, nil
	case raw[0] == '[' && listParams[key]:
		// *string: encoding/json would quietly turn a null item into "".
		var ptrs []*string
		if err := json.Unmarshal(raw, &ptrs); err != nil {
			return "", false, errorf("The parameter %q must be a string or an array of strings.", key)
		}
		items := make([]string, len(ptrs))
		for i, it := range ptrs {
			if it == nil {
				return "", false, errorf("The parameter %q must be a string or an array of strings.", key)
			}
			if strings.Contains(*it, ",") {
				return "", false, errorf("An item of parameter %q holds a comma; give one name per item.", key)
			}
			items[i] = *it
		}
		joined := strings.Join(items, ",")
		if loneSurrogate(raw, joined) {
			return "", false, errorf("The parameter %q must be a string or an array of strings.", key)
		}
		return joined, true, nil
	case listParams[key]:
		return "", false, errorf("The parameter %q must be a string or an array of strings.", key)
	default:
		return "", false, errorf("The parameter %q must be a JSON string.", key)
	}
}

// loneSurrogate reports whether decoding raw produced a U+FFFD that raw
// did not spell: encoding/json quietly replaces an escaped lone surrogate
// ("\ud800") with it, which would change the caller's text without a word.
func loneSurrogate(raw []byte, decoded string) bool {
	if !strings.ContainsRune(decoded, utf8.RuneError) {
		return false
	}
	return !bytes.ContainsRune(raw, utf8.RuneError) && !bytes.Contains(bytes.ToLower(raw), []byte(`\ufffd`))
}

// Merge adds the parameters of b to a, refusing a name given in both with
// different values.
func Merge(a, b Set) (Set, error) {
	out := make(Set, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if err := out.put(k, v, "query string and body"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func jsonReason(err error) string {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Sprintf("%s at offset %d", syn.Error(), syn.Offset)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of input"
	}
	return err.Error()
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
