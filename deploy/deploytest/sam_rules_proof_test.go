package deploytest

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func TestTemplatePassesEveryRule(t *testing.T) {
	tpl := loadTemplate(t, filepath.Join(repoRoot(t), "template.yaml"))
	for _, f := range lintTemplate(tpl.doc) {
		t.Errorf("template.yaml: %s", f)
	}
}

// mutation breaks a copy of the processed template.
type mutation func(doc map[string]interface{}) error

func set(value interface{}, path ...interface{}) mutation {
	return func(doc map[string]interface{}) error { return setPath(doc, value, false, path...) }
}

func del(path ...interface{}) mutation {
	return func(doc map[string]interface{}) error { return setPath(doc, nil, true, path...) }
}

func both(ms ...mutation) mutation {
	return func(doc map[string]interface{}) error {
		for _, m := range ms {
			if err := m(doc); err != nil {
				return err
			}
		}
		return nil
	}
}

// addResource adds a resource to the template.
func addResource(name string, r map[string]interface{}) mutation {
	return set(r, "Resources", name)
}

// dropStatement removes statement i of the policy document at path.
func dropStatement(i int, path ...interface{}) mutation {
	return func(doc map[string]interface{}) error {
		p := append(append([]interface{}{}, path...), "Statement")
		l := list(getPath(doc, p...))
		if i >= len(l) {
			return os.ErrNotExist
		}
		nl := append(append([]interface{}{}, l[:i]...), l[i+1:]...)
		return setPath(doc, nl, false, p...)
	}
}

func appendStatement(s map[string]interface{}, path ...interface{}) mutation {
	return func(doc map[string]interface{}) error {
		p := append(append([]interface{}{}, path...), "Statement")
		l := append(list(getPath(doc, p...)), s)
		return setPath(doc, l, false, p...)
	}
}

var (
	fnProps    = []interface{}{"Resources", "CsrfnFunction", "Properties"}
	httpEvent  = []interface{}{"Resources", "CsrfnFunction", "Properties", "Events", "HttpApi", "Properties"}
	schedEvent = []interface{}{"Resources", "CsrfnFunction", "Properties", "Events", "Renewal", "Properties"}
	apiAuth    = []interface{}{"Resources", "CsrfnHttpApi", "Properties", "Auth"}
	bucket     = []interface{}{"Resources", "KeyBucket"}
	bucketP    = []interface{}{"Resources", "KeyBucket", "Properties"}
	sseRule    = []interface{}{"Resources", "KeyBucket", "Properties", "BucketEncryption", "ServerSideEncryptionConfiguration", 0}
	bpDoc      = []interface{}{"Resources", "KeyBucketPolicy", "Properties", "PolicyDocument"}
	keyP       = []interface{}{"Resources", "SealingKey", "Properties"}
	roleDoc    = []interface{}{"Resources", "FunctionRole", "Properties", "Policies", 0, "PolicyDocument"}
	envVars    = []interface{}{"Resources", "CsrfnFunction", "Properties", "Environment", "Variables"}
	queueP     = []interface{}{"Resources", "RequestQueue", "Properties"}
	mappingP   = []interface{}{"Resources", "RequestQueueMapping", "Properties"}
)

func at(base []interface{}, more ...interface{}) []interface{} {
	return append(append([]interface{}{}, base...), more...)
}

func stmt(i int, more ...interface{}) []interface{} {
	return at(roleDoc, append([]interface{}{"Statement", i}, more...)...)
}

// ruleProofs breaks the real template in one way per case; the named rule
// must report it. Every rule of samRules has at least one case.
var ruleProofs = []struct {
	rule, name string
	m          mutation
}{
	{"endpoint-iam-auth", "route authorizer NONE", set("NONE", at(httpEvent, "Auth", "Authorizer")...)},
	{"endpoint-iam-auth", "API without default authorizer, route without auth", both(del(at(httpEvent, "Auth")...), del(at(apiAuth, "DefaultAuthorizer")...))},
	{"endpoint-iam-auth", "AWS_IAM without EnableIamAuthorizer", del(at(apiAuth, "EnableIamAuthorizer")...)},
	{"endpoint-iam-auth", "route on the implicit HTTP API", both(del(at(httpEvent, "ApiId")...), del(at(httpEvent, "Auth")...))},
	{"endpoint-iam-auth", "REST API event without auth", set(map[string]interface{}{"Type": "Api", "Properties": map[string]interface{}{"Method": "post", "Path": "/"}}, at(fnProps, "Events", "Rest")...)},
	{"endpoint-iam-auth", "function URL without auth", set(map[string]interface{}{"AuthType": "NONE"}, at(fnProps, "FunctionUrlConfig")...)},
	{"endpoint-iam-auth", "HTTP API from an OpenAPI body", set(map[string]interface{}{"openapi": "3.0.1"}, "Resources", "CsrfnHttpApi", "Properties", "DefinitionBody")},
	{"endpoint-iam-auth", "AWS::Lambda::Url NONE", addResource("Url", map[string]interface{}{"Type": "AWS::Lambda::Url", "Properties": map[string]interface{}{"AuthType": "NONE", "TargetFunctionArn": "${CsrfnFunction.Arn}"}})},
	{"endpoint-iam-auth", "API Gateway v2 route NONE", addResource("Route", map[string]interface{}{"Type": "AWS::ApiGatewayV2::Route", "Properties": map[string]interface{}{"ApiId": "${CsrfnHttpApi}", "RouteKey": "POST /open", "AuthorizationType": "NONE"}})},
	{"endpoint-iam-auth", "API Gateway method NONE", addResource("Method", map[string]interface{}{"Type": "AWS::ApiGateway::Method", "Properties": map[string]interface{}{"HttpMethod": "POST", "AuthorizationType": "NONE", "ResourceId": "r", "RestApiId": "a"}})},
	{"endpoint-iam-auth", "invoke permission for everyone", addResource("Open", map[string]interface{}{"Type": "AWS::Lambda::Permission", "Properties": map[string]interface{}{"Action": "lambda:InvokeFunction", "FunctionName": "${CsrfnFunction}", "Principal": "*"}})},

	{"bucket-sse-kms", "no default encryption", del(at(bucketP, "BucketEncryption")...)},
	{"bucket-sse-kms", "SSE-S3", set("AES256", at(sseRule, "ServerSideEncryptionByDefault", "SSEAlgorithm")...)},
	{"bucket-sse-kms", "aws/s3 instead of the stack's key", del(at(sseRule, "ServerSideEncryptionByDefault", "KMSMasterKeyID")...)},
	{"bucket-sse-kms", "no bucket key", set(false, at(sseRule, "BucketKeyEnabled")...)},

	{"bucket-public-access-block", "BlockPublicAcls off", set(false, at(bucketP, "PublicAccessBlockConfiguration", "BlockPublicAcls")...)},
	{"bucket-public-access-block", "BlockPublicPolicy off", set(false, at(bucketP, "PublicAccessBlockConfiguration", "BlockPublicPolicy")...)},
	{"bucket-public-access-block", "IgnorePublicAcls off", set(false, at(bucketP, "PublicAccessBlockConfiguration", "IgnorePublicAcls")...)},
	{"bucket-public-access-block", "RestrictPublicBuckets missing", del(at(bucketP, "PublicAccessBlockConfiguration", "RestrictPublicBuckets")...)},
	{"bucket-public-access-block", "no block at all", del(at(bucketP, "PublicAccessBlockConfiguration")...)},

	{"bucket-tls-only", "no TLS statement", dropStatement(0, bpDoc...)},
	{"bucket-tls-only", "condition inverted", set("true", at(bpDoc, "Statement", 0, "Condition", "Bool", "aws:SecureTransport")...)},
	{"bucket-tls-only", "objects not covered", set("${KeyBucket.Arn}", at(bpDoc, "Statement", 0, "Resource")...)},
	{"bucket-tls-only", "no bucket policy", del("Resources", "KeyBucketPolicy")},

	{"bucket-deny-unencrypted-put", "no SSE statement", dropStatement(1, bpDoc...)},
	{"bucket-deny-unencrypted-put", "AES256 accepted", set("AES256", at(bpDoc, "Statement", 1, "Condition", "StringNotEquals", "s3:x-amz-server-side-encryption")...)},

	{"bucket-versioning", "suspended", set("Suspended", at(bucketP, "VersioningConfiguration", "Status")...)},
	{"bucket-versioning", "never enabled", del(at(bucketP, "VersioningConfiguration")...)},

	{"bucket-owner-enforced", "ACLs enabled", set("ObjectWriter", at(bucketP, "OwnershipControls", "Rules", 0, "ObjectOwnership")...)},

	{"kms-rotation", "rotation off", set(false, at(keyP, "EnableKeyRotation")...)},
	{"kms-rotation", "rotation unset", del(at(keyP, "EnableKeyRotation")...)},

	{"kms-root-admin", "only a role administers the key", set("arn:aws:iam::111122223333:role/admin", at(keyP, "KeyPolicy", "Statement", 0, "Principal", "AWS")...)},

	{"resource-policy-no-public-allow", "bucket policy allows everyone", appendStatement(map[string]interface{}{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "${KeyBucket.Arn}/*"}, bpDoc...)},
	{"resource-policy-no-public-allow", "key policy allows everyone", set("*", at(keyP, "KeyPolicy", "Statement", 0, "Principal")...)},
	{"resource-policy-no-public-allow", "anyone may assume the role", set(map[string]interface{}{"AWS": "*"}, "Resources", "FunctionRole", "Properties", "AssumeRolePolicyDocument", "Statement", 0, "Principal")},

	{"iam-no-wildcard", "s3:*", set("s3:*", stmt(0, "Action")...)},
	{"iam-no-wildcard", "*", set("*", stmt(2, "Action")...)},
	{"iam-no-wildcard", "s3:Get*", set([]interface{}{"s3:PutObject", "s3:Get*"}, stmt(0, "Action")...)},
	{"iam-no-wildcard", "Resource * for kms", set("*", stmt(2, "Resource")...)},
	{"iam-no-wildcard", "every bucket", set("arn:aws:s3:::*", stmt(0, "Resource")...)},
	{"iam-no-wildcard", "NotAction", both(del(stmt(3, "Action")...), set("iam:*", stmt(3, "NotAction")...))},
	{"iam-no-wildcard", "wildcard in the queue policy", set("sqs:*", "Resources", "RequestQueuePolicy", "Properties", "PolicyDocument", "Statement", 0, "Action")},

	{"iam-no-managed-policy", "managed policy on the role", set([]interface{}{"arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"}, "Resources", "FunctionRole", "Properties", "ManagedPolicyArns")},
	{"iam-no-managed-policy", "function without its role", del(at(fnProps, "Role")...)},
	{"iam-no-managed-policy", "SAM policy by name", set([]interface{}{"AmazonS3ReadOnlyAccess"}, at(fnProps, "Policies")...)},
	{"iam-no-managed-policy", "customer managed policy", addResource("Extra", map[string]interface{}{"Type": "AWS::IAM::ManagedPolicy", "Properties": map[string]interface{}{"Roles": []interface{}{"${FunctionRole}"}, "PolicyDocument": map[string]interface{}{"Version": "2012-10-17", "Statement": []interface{}{map[string]interface{}{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "${KeyBucket.Arn}/csrfn/*"}}}}})},

	{"iam-least-privilege", "may delete records", set([]interface{}{"s3:PutObject", "s3:GetObject", "s3:DeleteObject"}, stmt(0, "Action")...)},
	{"iam-least-privilege", "objects of the whole bucket", set("${KeyBucket.Arn}/*", stmt(0, "Resource")...)},
	{"iam-least-privilege", "list without prefix condition", del(stmt(1, "Condition")...)},
	{"iam-least-privilege", "list every prefix", set("*", stmt(1, "Condition", "StringLike", "s3:prefix")...)},
	{"iam-least-privilege", "another KMS key", set("arn:aws:kms:us-east-1:111122223333:key/other", stmt(2, "Resource")...)},
	{"iam-least-privilege", "another log group", set("arn:aws:logs:us-east-1:111122223333:log-group:other:*", stmt(3, "Resource")...)},
	{"iam-least-privilege", "can create log groups", set([]interface{}{"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}, stmt(3, "Action")...)},
	{"iam-least-privilege", "queue policy may send", set([]interface{}{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:SendMessage"}, "Resources", "RequestQueuePolicy", "Properties", "PolicyDocument", "Statement", 0, "Action")},
	{"iam-least-privilege", "extra policy on the role", addResource("Extra", map[string]interface{}{"Type": "AWS::IAM::Policy", "Properties": map[string]interface{}{"PolicyName": "extra", "Roles": []interface{}{"${FunctionRole}"}, "PolicyDocument": map[string]interface{}{"Version": "2012-10-17", "Statement": []interface{}{map[string]interface{}{"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "${SealingKey.Arn}"}}}}})},

	{"function-env", "file store", set("file:///tmp/csrfn", at(envVars, "CSRFN_STORE")...)},
	{"function-env", "store in a bucket outside the stack", set("s3://some-bucket/csrfn", at(envVars, "CSRFN_STORE")...)},
	{"function-env", "no KMS sealing", del(at(envVars, "CSRFN_KMS_KEY_ID")...)},
	{"function-env", "SSE key not named", del(at(envVars, "CSRFN_S3_KMS_KEY_ID")...)},
	{"function-env", "no log level", del(at(envVars, "CSRFN_LOG_LEVEL")...)},

	{"function-logging", "default log group", del(at(fnProps, "LoggingConfig")...)},
	{"function-logging", "log group kept forever", del("Resources", "FunctionLogGroup", "Properties", "RetentionInDays")},

	{"schedule-disabled", "enabled", set(true, at(schedEvent, "Enabled")...)},
	{"schedule-disabled", "enabled by omission", del(at(schedEvent, "Enabled")...)},
	{"schedule-disabled", "input is one request", set(`{"CommonName":"example.com"}`, at(schedEvent, "Input")...)},
	{"schedule-disabled", "input is not JSON", set(`Requests: example.com`, at(schedEvent, "Input")...)},
	{"schedule-disabled", "batch too large", set(`{"Requests":[`+strings.Repeat(`{"CommonName":"a.example"},`, 100)+`{"CommonName":"b.example"}]}`, at(schedEvent, "Input")...)},

	{"queue-redrive", "whole batch retried", del(at(mappingP, "FunctionResponseTypes")...)},
	{"queue-redrive", "no dead-letter queue", del(at(queueP, "RedrivePolicy")...)},
	{"queue-redrive", "no receive limit", del(at(queueP, "RedrivePolicy", "maxReceiveCount")...)},
	{"queue-redrive", "mapping not conditional", del("Resources", "RequestQueueMapping", "Condition")},
	{"queue-redrive", "visibility shorter than the timeout", set(30.0, at(queueP, "VisibilityTimeout")...)},

	{"retain-key-material", "bucket deleted with the stack", set("Delete", at(bucket, "DeletionPolicy")...)},
	{"retain-key-material", "key replaced", del("Resources", "SealingKey", "UpdateReplacePolicy")},
}

func TestEachRuleFires(t *testing.T) {
	base := loadTemplate(t, filepath.Join(repoRoot(t), "template.yaml")).doc
	for _, c := range ruleProofs {
		t.Run(c.rule+"/"+c.name, func(t *testing.T) {
			doc := deepCopy(base).(map[string]interface{})
			if err := c.m(doc); err != nil {
				t.Fatalf("mutation: %v", err)
			}
			var got []string
			for _, f := range lintTemplate(doc) {
				if f.Rule == c.rule {
					return
				}
				got = append(got, f.String())
			}
			t.Errorf("rule %s did not fire; findings: %v", c.rule, got)
		})
	}
}

func TestEveryRuleHasAProof(t *testing.T) {
	proved := map[string]bool{}
	for _, c := range ruleProofs {
		proved[c.rule] = true
	}
	known := map[string]bool{}
	for _, r := range samRules {
		known[r.ID] = true
		if !proved[r.ID] {
			t.Errorf("rule %s has no case in ruleProofs", r.ID)
		}
	}
	for id := range proved {
		if !known[id] {
			t.Errorf("ruleProofs names unknown rule %s", id)
		}
	}
}

// Small templates in testdata/sam are broken the way someone might write
// them from scratch. Each is valid against the SAM schema (the schema does
// not catch the mistake) and its first line names the rules that must fire:
// "# expect: rule-a rule-b".
func TestBrokenTemplatesInTestdata(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "deploy", "deploytest", "testdata", "sam", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/sam/*.yaml (%v)", err)
	}
	v := samValidator(t)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data := readFile(t, file)
			line, _ := bufio.NewReader(bytes.NewReader(data)).ReadString('\n')
			want := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "# expect:"))
			if !strings.HasPrefix(line, "# expect:") || len(want) == 0 {
				t.Fatalf("first line must be `# expect: RULE…`")
			}
			tpl, err := parseTemplate(data)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range v.Validate(tpl.doc) {
				t.Errorf("not valid against the SAM schema: %s", e)
			}
			fired := map[string]bool{}
			var all []string
			for _, f := range lintTemplate(tpl.doc) {
				fired[f.Rule] = true
				all = append(all, f.String())
			}
			sort.Strings(all)
			for _, r := range want {
				if !fired[r] {
					t.Errorf("rule %s did not fire; findings:\n%s", r, strings.Join(all, "\n"))
				}
			}
		})
	}
}
