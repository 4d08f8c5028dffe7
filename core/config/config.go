// Package config reads csrfn's configuration from environment variables
// (DESIGN.md §5). Each adapter's main calls FromEnv once; a bad setting
// stops start-up with an error that names the variable. Secrets are held in
// a type that never prints.
package config

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/csrfn/csrfn/core/request"
	"github.com/csrfn/csrfn/core/seal"
)

// Variables.
const (
	EnvStore         = "CSRFN_STORE"
	EnvMasterKey     = "CSRFN_MASTER_KEY"
	EnvMasterKeyFile = "CSRFN_MASTER_KEY_FILE"
	EnvKMSKeyID      = "CSRFN_KMS_KEY_ID"
	EnvListen        = "CSRFN_LISTEN"
	EnvToken         = "CSRFN_TOKEN"
	EnvLogLevel      = "CSRFN_LOG_LEVEL"
	EnvHostID        = "CSRFN_HOST_ID"

	EnvDefaultOrganization     = "CSRFN_DEFAULT_ORGANIZATION"
	EnvDefaultOrganizationUnit = "CSRFN_DEFAULT_ORGANIZATION_UNIT"
	EnvDefaultCountry          = "CSRFN_DEFAULT_COUNTRY"
	EnvDefaultState            = "CSRFN_DEFAULT_STATE"
	EnvDefaultCity             = "CSRFN_DEFAULT_CITY"
)

// Embedded defaults of the local server.
const (
	DefaultStore         = "file://./.csrfn/store"
	DefaultMasterKeyFile = "./.csrfn/master.key"
	DefaultListen        = "127.0.0.1:9000"
)

// Secret holds a secret value; it formats as [redacted] everywhere.
type Secret string

func (Secret) String() string                 { return "[redacted]" }
func (Secret) GoString() string               { return "[redacted]" }
func (Secret) LogValue() slog.Value           { return slog.StringValue("[redacted]") }
func (s Secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// Reveal returns the value; call it only where the secret is used.
func (s Secret) Reveal() string { return string(s) }

// Config is the whole configuration.
type Config struct {
	Store         *url.URL
	MasterKey     Secret // base64; decoded when the sealer is built
	MasterKeyFile string
	KMSKeyID      string
	Listen        string
	Token         Secret
	LogLevel      slog.Level
	HostID        string
	Defaults      request.Defaults
}

// Error is a configuration error naming its variable. It never quotes a
// secret's value.
type Error struct {
	Var    string
	Reason string
}

func (e *Error) Error() string { return e.Var + ": " + e.Reason }

// FromEnv reads the configuration; lookup is os.LookupEnv in production.
// defaultStore is the adapter's embedded store ("" means CSRFN_STORE is
// required).
func FromEnv(lookup func(string) (string, bool), defaultStore string) (*Config, error) {
	get := func(name string) string {
		v, _ := lookup(name)
		return strings.TrimSpace(v)
	}
	c := &Config{
		MasterKey:     Secret(get(EnvMasterKey)),
		MasterKeyFile: get(EnvMasterKeyFile),
		KMSKeyID:      get(EnvKMSKeyID),
		Listen:        get(EnvListen),
		Token:         Secret(get(EnvToken)),
		HostID:        get(EnvHostID),
	}
	store := get(EnvStore)
	if store == "" {
		store = defaultStore
	}
	if store == "" {
		return nil, &Error{EnvStore, "not set; give the key store as a URL such as file:///tmp/csrfn, s3://bucket/prefix or oss://bucket/prefix"}
	}
	u, err := url.Parse(store)
	if err != nil || u.Scheme == "" {
		// Not quoted: a mistyped URL may carry credentials.
		return nil, &Error{EnvStore, "not a store URL; use file://DIR, s3://BUCKET/PREFIX or oss://BUCKET/PREFIX"}
	}
	switch u.Scheme {
	case "file", "s3", "oss":
	default:
		return nil, &Error{EnvStore, fmt.Sprintf("unknown scheme %q; use file://, s3:// or oss://", u.Scheme)}
	}
	c.Store = u

	if c.MasterKey != "" && c.MasterKeyFile != "" {
		return nil, &Error{EnvMasterKey, "set either " + EnvMasterKey + " or " + EnvMasterKeyFile + ", not both"}
	}
	if c.MasterKey != "" {
		if _, err := seal.DecodeKey(c.MasterKey.Reveal()); err != nil {
			return nil, &Error{EnvMasterKey, err.Error()}
		}
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if lvl := get(EnvLogLevel); lvl != "" {
		if err := c.LogLevel.UnmarshalText([]byte(lvl)); err != nil {
			return nil, &Error{EnvLogLevel, fmt.Sprintf("%q is not a level; use DEBUG, INFO, WARN or ERROR", lvl)}
		}
	}

	d := request.SeedDefaults
	for _, f := range []struct {
		env string
		dst *string
	}{
		{EnvDefaultOrganization, &d.Organization},
		{EnvDefaultOrganizationUnit, &d.OrganizationUnit},
		{EnvDefaultCountry, &d.Country},
		{EnvDefaultState, &d.State},
		{EnvDefaultCity, &d.City},
	} {
		if v := get(f.env); v != "" {
			*f.dst = v
		}
	}
	d.Country = strings.ToUpper(d.Country)
	if err := d.Validate(); err != nil {
		de := err.(*request.DefaultError)
		return nil, &Error{defaultVar(de.Param), de.Reason}
	}
	c.Defaults = d
	return c, nil
}

func defaultVar(param string) string {
	switch param {
	case "Organization":
		return EnvDefaultOrganization
	case "OrganizationUnit":
		return EnvDefaultOrganizationUnit
	case "Country":
		return EnvDefaultCountry
	case "State":
		return EnvDefaultState
	}
	return EnvDefaultCity
}
