package awsenv

import (
	"context"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestConfig(t *testing.T) {
	cfg := Config(env(map[string]string{
		"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret-value", "AWS_SESSION_TOKEN": "token-value",
	}))
	if cfg.Region != "eu-west-1" {
		t.Fatalf("region %q", cfg.Region)
	}
	c, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil || c.AccessKeyID != "AKIDEXAMPLE" || c.SecretAccessKey != "secret-value" || c.SessionToken != "token-value" {
		t.Fatalf("credentials %v %v", c.AccessKeyID, err)
	}
	if r := Config(env(map[string]string{"AWS_DEFAULT_REGION": "ap-south-1"})).Region; r != "ap-south-1" {
		t.Fatalf("AWS_DEFAULT_REGION fallback gave %q", r)
	}
}

func TestMissingCredentials(t *testing.T) {
	_, err := Config(env(map[string]string{"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE"})).Credentials.Retrieve(context.Background())
	if err == nil || !strings.Contains(err.Error(), EnvSecretAccessKey) || strings.Contains(err.Error(), "AKIDEXAMPLE") {
		t.Fatalf("err %v: want one naming %s and not quoting values", err, EnvSecretAccessKey)
	}
}

func TestEndpoint(t *testing.T) {
	for _, tc := range []struct {
		m    map[string]string
		want string
	}{
		{map[string]string{}, ""},
		{map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}, "http://127.0.0.1:1"},
		{map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ENDPOINT_URL_KMS": "http://127.0.0.1:2"}, "http://127.0.0.1:2"},
	} {
		if got := Endpoint(env(tc.m), "kms"); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.m, got, tc.want)
		}
	}
}
