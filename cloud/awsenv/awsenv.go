// Package awsenv builds the AWS SDK configuration a Lambda function runs
// with: the region and the execution role's credentials, both from the
// environment the Lambda runtime sets. It stands in for
// config.LoadDefaultConfig, whose shared-profile, SSO, STS and IMDS support
// a function never uses and which would add some 3 MiB to the bootstrap
// (the limit is 10 MiB).
package awsenv

import (
	"context"
	"errors"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// The variables Lambda sets for the function's role and region, and the
// SDK's standard endpoint overrides.
const (
	EnvAccessKeyID     = "AWS_ACCESS_KEY_ID"
	EnvSecretAccessKey = "AWS_SECRET_ACCESS_KEY"
	EnvSessionToken    = "AWS_SESSION_TOKEN"
	EnvRegion          = "AWS_REGION"
	EnvDefaultRegion   = "AWS_DEFAULT_REGION"
	EnvEndpointURL     = "AWS_ENDPOINT_URL"
)

// Config returns the configuration from the environment; lookup is
// os.LookupEnv in production. It makes no request; missing credentials
// surface on the first call, with an error naming the variables.
func Config(lookup func(string) (string, bool)) aws.Config {
	return aws.Config{
		Region:      first(lookup, EnvRegion, EnvDefaultRegion),
		Credentials: aws.NewCredentialsCache(provider{lookup}),
	}
}

// Endpoint returns the endpoint override for service (e.g. "KMS"):
// AWS_ENDPOINT_URL_<SERVICE>, else AWS_ENDPOINT_URL, else "".
func Endpoint(lookup func(string) (string, bool), service string) string {
	return first(lookup, EnvEndpointURL+"_"+strings.ToUpper(service), EnvEndpointURL)
}

func first(lookup func(string) (string, bool), names ...string) string {
	for _, n := range names {
		if v, _ := lookup(n); strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

type provider struct{ lookup func(string) (string, bool) }

// Retrieve reads the role's credentials. Lambda keeps them valid for the
// life of the execution environment, so the cache never needs to refresh.
func (p provider) Retrieve(context.Context) (aws.Credentials, error) {
	id, _ := p.lookup(EnvAccessKeyID)
	secret, _ := p.lookup(EnvSecretAccessKey)
	token, _ := p.lookup(EnvSessionToken)
	if id == "" || secret == "" {
		return aws.Credentials{}, errors.New("awsenv: no AWS credentials: " + EnvAccessKeyID + " and " + EnvSecretAccessKey +
			" are not set (Lambda sets them, with " + EnvSessionToken + ", from the function's execution role)")
	}
	return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: token, Source: "awsenv"}, nil
}
