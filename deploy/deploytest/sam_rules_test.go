package deploytest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// The rules read the processed template (see load_test.go): references are
// tokens, "${Name}" for a Ref and "${Name.Attr}" for a GetAtt, and Fn::Sub
// strings keep their ${…} as written.

type finding struct {
	Rule  string // samRule.ID
	Where string // logical ID (and detail)
	Msg   string
}

func (f finding) String() string { return f.Rule + " " + f.Where + ": " + f.Msg }

type samRule struct {
	ID    string
	What  string
	Check func(*cfnDoc) []finding
}

// cfnDoc indexes a processed template.
type cfnDoc struct {
	doc       map[string]interface{}
	resources map[string]map[string]interface{}
}

type namedResource struct {
	Name string
	R    map[string]interface{}
}

func newCfnDoc(doc map[string]interface{}) *cfnDoc {
	d := &cfnDoc{doc: doc, resources: map[string]map[string]interface{}{}}
	if rs, ok := doc["Resources"].(map[string]interface{}); ok {
		for name, r := range rs {
			if m, ok := r.(map[string]interface{}); ok {
				d.resources[name] = m
			}
		}
	}
	return d
}

func (d *cfnDoc) ofType(types ...string) []namedResource {
	var out []namedResource
	for name, r := range d.resources {
		for _, t := range types {
			if str(r["Type"]) == t {
				out = append(out, namedResource{name, r})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func props(r map[string]interface{}) map[string]interface{} {
	p, _ := r["Properties"].(map[string]interface{})
	return p
}

// refersTo resolves a "${Name}" or "${Name.Attr}" token to a resource of one
// of the given types.
func (d *cfnDoc) refersTo(v interface{}, attr string, types ...string) (string, bool) {
	name, a, ok := token(str(v))
	if !ok || a != attr {
		return "", false
	}
	r, ok := d.resources[name]
	if !ok {
		return "", false
	}
	for _, t := range types {
		if str(r["Type"]) == t {
			return name, true
		}
	}
	return "", false
}

var samRules = []samRule{
	{"endpoint-iam-auth", "every HTTP route, function URL and invoke permission requires IAM (SigV4)", checkEndpointsIAM},
	{"bucket-sse-kms", "every bucket encrypts by default with SSE-KMS under a KMS key of the stack, with an S3 Bucket Key", checkBucketSSEKMS},
	{"bucket-public-access-block", "every bucket sets all four public-access blocks", checkBucketPublicAccessBlock},
	{"bucket-tls-only", "every bucket's policy denies any request made without TLS", checkBucketTLSOnly},
	{"bucket-deny-unencrypted-put", "every bucket's policy denies PutObject without aws:kms encryption", checkBucketDenyUnencryptedPut},
	{"bucket-versioning", "every bucket has versioning enabled", checkBucketVersioning},
	{"bucket-owner-enforced", "every bucket disables ACLs (BucketOwnerEnforced)", checkBucketOwnerEnforced},
	{"kms-rotation", "every KMS key rotates automatically", checkKMSRotation},
	{"kms-root-admin", "every KMS key policy keeps the account root as administrator", checkKMSRootAdmin},
	{"resource-policy-no-public-allow", "no bucket, key, queue or trust policy allows the anonymous principal", checkNoPublicAllow},
	{"iam-no-wildcard", "no IAM statement allows a wildcard action, NotAction, Resource \"*\", NotResource or a whole-service ARN", checkIAMNoWildcard},
	{"iam-no-managed-policy", "no managed policy is attached and every function has its explicit role", checkIAMNoManagedPolicy},
	{"iam-least-privilege", "the function role may create and read objects under the store prefix, list that prefix, use its KMS key, write its log group and consume its queue, nothing more", checkIAMLeastPrivilege},
	{"function-env", "the function is configured for the S3 store and the KMS key of the stack", checkFunctionEnv},
	{"function-logging", "the function logs to a log group of the stack that has a retention", checkFunctionLogging},
	{"schedule-disabled", "schedule events are disabled by default and carry a valid batch as their input", checkScheduleDisabled},
	{"queue-redrive", "a queue feeding the function reports batch item failures and has a dead-letter queue", checkQueueRedrive},
	{"retain-key-material", "the key bucket and the KMS key survive the deletion or replacement of the stack", checkRetainKeyMaterial},
}

func lintTemplate(doc map[string]interface{}) []finding {
	d := newCfnDoc(doc)
	var out []finding
	for _, r := range samRules {
		out = append(out, r.Check(d)...)
	}
	return out
}

// ---- endpoints ----

func checkEndpointsIAM(d *cfnDoc) []finding {
	const id = "endpoint-iam-auth"
	var out []finding
	add := func(where, format string, a ...interface{}) {
		out = append(out, finding{id, where, fmt.Sprintf(format, a...)})
	}
	for _, api := range d.ofType("AWS::Serverless::HttpApi", "AWS::Serverless::Api") {
		p := props(api.R)
		if p["DefinitionBody"] != nil || p["DefinitionUri"] != nil {
			add(api.Name, "defines its routes in an OpenAPI document, whose authorisation these rules cannot check")
		}
	}
	for _, fn := range d.ofType("AWS::Serverless::Function") {
		p := props(fn.R)
		if u, ok := p["FunctionUrlConfig"].(map[string]interface{}); ok && str(u["AuthType"]) != "AWS_IAM" {
			add(fn.Name, "function URL with AuthType %q (want AWS_IAM)", str(u["AuthType"]))
		}
		events, _ := p["Events"].(map[string]interface{})
		for _, evName := range sortedKeys(events) {
			ev, _ := events[evName].(map[string]interface{})
			ep, _ := ev["Properties"].(map[string]interface{})
			where := fn.Name + "/Events/" + evName
			route := strings.TrimSpace(str(ep["Method"]) + " " + str(ep["Path"]))
			switch str(ev["Type"]) {
			case "HttpApi":
				var apiAuth map[string]interface{}
				apiName := "the implicit HTTP API"
				if ep["ApiId"] != nil {
					name, ok := d.refersTo(ep["ApiId"], "", "AWS::Serverless::HttpApi")
					if !ok {
						add(where, "ApiId %v is not an AWS::Serverless::HttpApi of this template", ep["ApiId"])
						continue
					}
					apiName = name
					apiAuth, _ = getPath(props(d.resources[name]), "Auth").(map[string]interface{})
				} else {
					apiAuth, _ = getPath(d.doc, "Globals", "HttpApi", "Auth").(map[string]interface{})
				}
				auth := str(getPath(ep, "Auth", "Authorizer"))
				if auth == "" {
					auth = str(apiAuth["DefaultAuthorizer"])
				}
				switch {
				case auth != "AWS_IAM":
					add(where, "route %q of %s is not IAM-authorised (authorizer %q)", route, apiName, auth)
				case !isTrue(apiAuth["EnableIamAuthorizer"]):
					add(where, "route %q uses AWS_IAM but %s does not set Auth.EnableIamAuthorizer", route, apiName)
				}
			case "Api":
				var apiAuth map[string]interface{}
				apiName := "the implicit REST API"
				if ep["RestApiId"] != nil {
					name, ok := d.refersTo(ep["RestApiId"], "", "AWS::Serverless::Api")
					if !ok {
						add(where, "RestApiId %v is not an AWS::Serverless::Api of this template", ep["RestApiId"])
						continue
					}
					apiName = name
					apiAuth, _ = getPath(props(d.resources[name]), "Auth").(map[string]interface{})
				} else {
					apiAuth, _ = getPath(d.doc, "Globals", "Api", "Auth").(map[string]interface{})
				}
				auth := str(getPath(ep, "Auth", "Authorizer"))
				if auth == "" {
					auth = str(apiAuth["DefaultAuthorizer"])
				}
				if auth != "AWS_IAM" {
					add(where, "route %q of %s is not IAM-authorised (authorizer %q)", route, apiName, auth)
				}
			}
		}
	}
	for _, u := range d.ofType("AWS::Lambda::Url") {
		if a := str(props(u.R)["AuthType"]); a != "AWS_IAM" {
			add(u.Name, "function URL with AuthType %q (want AWS_IAM)", a)
		}
	}
	for _, r := range d.ofType("AWS::ApiGatewayV2::Route") {
		if a := str(props(r.R)["AuthorizationType"]); a != "AWS_IAM" {
			add(r.Name, "route with AuthorizationType %q (want AWS_IAM)", a)
		}
	}
	for _, m := range d.ofType("AWS::ApiGateway::Method") {
		if a := str(props(m.R)["AuthorizationType"]); a != "AWS_IAM" {
			add(m.Name, "method with AuthorizationType %q (want AWS_IAM)", a)
		}
	}
	for _, perm := range d.ofType("AWS::Lambda::Permission") {
		p := props(perm.R)
		if str(p["Principal"]) == "*" {
			add(perm.Name, "lets any principal invoke the function")
		}
		if a, ok := p["FunctionUrlAuthType"]; ok && str(a) != "AWS_IAM" {
			add(perm.Name, "permission for a function URL with FunctionUrlAuthType %q", str(a))
		}
	}
	return out
}

// ---- buckets ----

func checkBucketSSEKMS(d *cfnDoc) []finding {
	const id = "bucket-sse-kms"
	var out []finding
	for _, b := range d.ofType("AWS::S3::Bucket") {
		rules := list(getPath(props(b.R), "BucketEncryption", "ServerSideEncryptionConfiguration"))
		if len(rules) == 0 {
			out = append(out, finding{id, b.Name, "has no default encryption"})
			continue
		}
		for i, r := range rules {
			where := fmt.Sprintf("%s/ServerSideEncryptionConfiguration/%d", b.Name, i)
			alg := str(getPath(r, "ServerSideEncryptionByDefault", "SSEAlgorithm"))
			if alg != "aws:kms" && alg != "aws:kms:dsse" {
				out = append(out, finding{id, where, fmt.Sprintf("SSEAlgorithm %q is not SSE-KMS", alg)})
				continue
			}
			key := getPath(r, "ServerSideEncryptionByDefault", "KMSMasterKeyID")
			if _, ok := d.refersTo(key, "Arn", "AWS::KMS::Key"); !ok {
				out = append(out, finding{id, where, fmt.Sprintf("KMSMasterKeyID %v is not the ARN of a KMS key of the stack (without it S3 uses aws/s3)", key)})
			}
			if !isTrue(getPath(r, "BucketKeyEnabled")) {
				out = append(out, finding{id, where, "BucketKeyEnabled is not true"})
			}
		}
	}
	return out
}

func checkBucketPublicAccessBlock(d *cfnDoc) []finding {
	var out []finding
	for _, b := range d.ofType("AWS::S3::Bucket") {
		pab := getPath(props(b.R), "PublicAccessBlockConfiguration")
		for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
			if !isTrue(getPath(pab, k)) {
				out = append(out, finding{"bucket-public-access-block", b.Name, k + " is not true"})
			}
		}
	}
	return out
}

// bucketPolicyStatements are the statements of the bucket policies whose
// Bucket refers to bucket.
func (d *cfnDoc) bucketPolicyStatements(bucket string) []map[string]interface{} {
	var out []map[string]interface{}
	for _, bp := range d.ofType("AWS::S3::BucketPolicy") {
		p := props(bp.R)
		if name, _, ok := token(str(p["Bucket"])); !ok || name != bucket {
			continue
		}
		out = append(out, statements(p["PolicyDocument"])...)
	}
	return out
}

func statements(policyDoc interface{}) []map[string]interface{} {
	var out []map[string]interface{}
	for _, s := range list(getPath(policyDoc, "Statement")) {
		if m, ok := s.(map[string]interface{}); ok {
			out = append(out, m)
		}
	}
	return out
}

func anyonePrincipal(p interface{}) bool {
	if str(p) == "*" {
		return true
	}
	for _, a := range strList(getPath(p, "AWS")) {
		if a == "*" {
			return true
		}
	}
	return false
}

func hasString(l []string, want ...string) bool {
	for _, s := range l {
		for _, w := range want {
			if s == w {
				return true
			}
		}
	}
	return false
}

func checkBucketTLSOnly(d *cfnDoc) []finding {
	var out []finding
	for _, b := range d.ofType("AWS::S3::Bucket") {
		ok := false
		for _, s := range d.bucketPolicyStatements(b.Name) {
			res := strList(s["Resource"])
			if str(s["Effect"]) == "Deny" && anyonePrincipal(s["Principal"]) &&
				hasString(strList(s["Action"]), "s3:*") &&
				isFalse(getPath(s, "Condition", "Bool", "aws:SecureTransport")) &&
				hasString(res, "${"+b.Name+".Arn}") && hasString(res, "${"+b.Name+".Arn}/*") {
				ok = true
			}
		}
		if !ok {
			out = append(out, finding{"bucket-tls-only", b.Name, "no bucket policy statement denies s3:* on the bucket and its objects when aws:SecureTransport is false"})
		}
	}
	return out
}

func checkBucketDenyUnencryptedPut(d *cfnDoc) []finding {
	var out []finding
	for _, b := range d.ofType("AWS::S3::Bucket") {
		ok := false
		for _, s := range d.bucketPolicyStatements(b.Name) {
			if str(s["Effect"]) == "Deny" && anyonePrincipal(s["Principal"]) &&
				hasString(strList(s["Action"]), "s3:PutObject", "s3:*") &&
				hasString(strList(s["Resource"]), "${"+b.Name+".Arn}/*") &&
				str(getPath(s, "Condition", "StringNotEquals", "s3:x-amz-server-side-encryption")) == "aws:kms" {
				ok = true
			}
		}
		if !ok {
			out = append(out, finding{"bucket-deny-unencrypted-put", b.Name, "no bucket policy statement denies PutObject whose s3:x-amz-server-side-encryption is not aws:kms"})
		}
	}
	return out
}

func checkBucketVersioning(d *cfnDoc) []finding {
	var out []finding
	for _, b := range d.ofType("AWS::S3::Bucket") {
		if s := str(getPath(props(b.R), "VersioningConfiguration", "Status")); s != "Enabled" {
			out = append(out, finding{"bucket-versioning", b.Name, fmt.Sprintf("versioning status %q (want Enabled)", s)})
		}
	}
	return out
}

func checkBucketOwnerEnforced(d *cfnDoc) []finding {
	var out []finding
	for _, b := range d.ofType("AWS::S3::Bucket") {
		ok := false
		for _, r := range list(getPath(props(b.R), "OwnershipControls", "Rules")) {
			if str(getPath(r, "ObjectOwnership")) == "BucketOwnerEnforced" {
				ok = true
			}
		}
		if !ok {
			out = append(out, finding{"bucket-owner-enforced", b.Name, "ObjectOwnership is not BucketOwnerEnforced"})
		}
	}
	return out
}

// ---- KMS ----

func checkKMSRotation(d *cfnDoc) []finding {
	var out []finding
	for _, k := range d.ofType("AWS::KMS::Key") {
		if !isTrue(props(k.R)["EnableKeyRotation"]) {
			out = append(out, finding{"kms-rotation", k.Name, "EnableKeyRotation is not true"})
		}
	}
	return out
}

var rootPrincipalRE = regexp.MustCompile(`^arn:(\$\{AWS::Partition\}|aws|aws-cn|aws-us-gov):iam::\$\{AWS::AccountId\}:root$`)

func checkKMSRootAdmin(d *cfnDoc) []finding {
	var out []finding
	for _, k := range d.ofType("AWS::KMS::Key") {
		ok := false
		for _, s := range statements(props(k.R)["KeyPolicy"]) {
			if str(s["Effect"]) != "Allow" || !hasString(strList(s["Action"]), "kms:*") {
				continue
			}
			for _, p := range strList(getPath(s, "Principal", "AWS")) {
				if rootPrincipalRE.MatchString(p) {
					ok = true
				}
			}
		}
		if !ok {
			out = append(out, finding{"kms-root-admin", k.Name, "the key policy does not allow kms:* to the account root (the key could become unmanageable)"})
		}
	}
	return out
}

// ---- resource policies ----

func checkNoPublicAllow(d *cfnDoc) []finding {
	const id = "resource-policy-no-public-allow"
	var out []finding
	check := func(where string, doc interface{}) {
		for i, s := range statements(doc) {
			if str(s["Effect"]) == "Allow" && anyonePrincipal(s["Principal"]) {
				out = append(out, finding{id, fmt.Sprintf("%s/Statement/%d", where, i), "allows the anonymous principal \"*\""})
			}
		}
	}
	for _, r := range d.ofType("AWS::S3::BucketPolicy") {
		check(r.Name, props(r.R)["PolicyDocument"])
	}
	for _, r := range d.ofType("AWS::SQS::QueuePolicy") {
		check(r.Name, props(r.R)["PolicyDocument"])
	}
	for _, r := range d.ofType("AWS::KMS::Key") {
		check(r.Name, props(r.R)["KeyPolicy"])
	}
	for _, r := range d.ofType("AWS::IAM::Role") {
		check(r.Name+"/AssumeRolePolicyDocument", props(r.R)["AssumeRolePolicyDocument"])
	}
	return out
}

// ---- IAM ----

// identityPolicy is one identity-based policy document and the roles it
// applies to.
type identityPolicy struct {
	Where string
	Doc   interface{}
	Roles []string // logical IDs of the roles it is attached to
}

func (d *cfnDoc) identityPolicies() []identityPolicy {
	var out []identityPolicy
	for _, r := range d.ofType("AWS::IAM::Role") {
		for i, p := range list(props(r.R)["Policies"]) {
			out = append(out, identityPolicy{fmt.Sprintf("%s/Policies/%d", r.Name, i), getPath(p, "PolicyDocument"), []string{r.Name}})
		}
	}
	for _, r := range d.ofType("AWS::IAM::RolePolicy") {
		p := props(r.R)
		var roles []string
		if name, ok := d.refersTo(p["RoleName"], "", "AWS::IAM::Role"); ok {
			roles = append(roles, name)
		}
		out = append(out, identityPolicy{r.Name, p["PolicyDocument"], roles})
	}
	for _, r := range d.ofType("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") {
		p := props(r.R)
		var roles []string
		for _, role := range list(p["Roles"]) {
			if name, ok := d.refersTo(role, "", "AWS::IAM::Role"); ok {
				roles = append(roles, name)
			}
		}
		out = append(out, identityPolicy{r.Name, p["PolicyDocument"], roles})
	}
	for _, fn := range d.ofType("AWS::Serverless::Function") {
		for i, p := range list(props(fn.R)["Policies"]) {
			if m, ok := p.(map[string]interface{}); ok && m["Statement"] != nil {
				out = append(out, identityPolicy{fmt.Sprintf("%s/Policies/%d", fn.Name, i), m, nil})
			}
		}
	}
	return out
}

var serviceWideARN = regexp.MustCompile(`^arn:[^:]*:(s3:::\*|kms:[^:]*:[^:]*:(key/)?\*|[a-z0-9-]+:[^:]*:[^:]*:\*)$`)

func checkIAMNoWildcard(d *cfnDoc) []finding {
	const id = "iam-no-wildcard"
	var out []finding
	for _, p := range d.identityPolicies() {
		for i, s := range statements(p.Doc) {
			where := fmt.Sprintf("%s/Statement/%d", p.Where, i)
			if str(s["Effect"]) != "Allow" {
				continue
			}
			if s["NotAction"] != nil {
				out = append(out, finding{id, where, "uses NotAction (allows everything but a list)"})
			}
			if s["NotResource"] != nil {
				out = append(out, finding{id, where, "uses NotResource"})
			}
			for _, a := range strList(s["Action"]) {
				if strings.Contains(a, "*") {
					out = append(out, finding{id, where, fmt.Sprintf("wildcard action %q", a)})
				}
			}
			for _, r := range strList(s["Resource"]) {
				if r == "*" || serviceWideARN.MatchString(r) {
					out = append(out, finding{id, where, fmt.Sprintf("wildcard resource %q", r)})
				}
			}
		}
	}
	return out
}

func checkIAMNoManagedPolicy(d *cfnDoc) []finding {
	const id = "iam-no-managed-policy"
	var out []finding
	for _, r := range d.ofType("AWS::IAM::Role") {
		if len(list(props(r.R)["ManagedPolicyArns"])) > 0 {
			out = append(out, finding{id, r.Name, fmt.Sprintf("ManagedPolicyArns %v", props(r.R)["ManagedPolicyArns"])})
		}
	}
	for _, r := range d.ofType("AWS::IAM::ManagedPolicy") {
		out = append(out, finding{id, r.Name, "a managed policy; write the statements inline in the role"})
	}
	for _, fn := range d.ofType("AWS::Serverless::Function") {
		p := props(fn.R)
		if p["Role"] == nil {
			out = append(out, finding{id, fn.Name, "no explicit Role: SAM would create one with the managed policy AWSLambdaBasicExecutionRole"})
		}
		for i, pol := range list(p["Policies"]) {
			m, isMap := pol.(map[string]interface{})
			if !isMap || m["Statement"] == nil {
				out = append(out, finding{id, fmt.Sprintf("%s/Policies/%d", fn.Name, i), fmt.Sprintf("managed policy or SAM policy template %v", short(pol))})
			}
		}
	}
	return out
}

// allowedActions is everything the function may do.
var allowedActions = map[string]bool{
	"s3:PutObject": true, "s3:GetObject": true, "s3:ListBucket": true,
	"kms:GenerateDataKey": true, "kms:Decrypt": true,
	"logs:CreateLogStream": true, "logs:PutLogEvents": true,
	"sqs:ReceiveMessage": true, "sqs:DeleteMessage": true, "sqs:GetQueueAttributes": true,
}

var s3StoreRE = regexp.MustCompile(`^s3://(\$\{[A-Za-z0-9]+\})/([^*?]+[^/*?])$`)

func checkIAMLeastPrivilege(d *cfnDoc) []finding {
	const id = "iam-least-privilege"
	var out []finding
	policies := d.identityPolicies()
	for _, fn := range d.ofType("AWS::Serverless::Function") {
		p := props(fn.R)
		role, ok := d.refersTo(p["Role"], "Arn", "AWS::IAM::Role")
		if !ok {
			out = append(out, finding{id, fn.Name, fmt.Sprintf("Role %v is not the ARN of a role of this template", p["Role"])})
			continue
		}
		env, _ := getPath(p, "Environment", "Variables").(map[string]interface{})
		m := s3StoreRE.FindStringSubmatch(str(env["CSRFN_STORE"]))
		var bucketArn, objects, listPrefix string
		if m != nil {
			bucketArn = strings.TrimSuffix(m[1], "}") + ".Arn}"
			objects = bucketArn + "/" + m[2] + "/*"
			listPrefix = m[2] + "/*"
		}
		keyArn := str(env["CSRFN_KMS_KEY_ID"])
		logGroupArn := ""
		if lg, _, ok := token(str(getPath(p, "LoggingConfig", "LogGroup"))); ok {
			logGroupArn = "${" + lg + ".Arn}"
		}
		for _, pol := range policies {
			if !hasString(pol.Roles, role) {
				continue
			}
			for i, s := range statements(pol.Doc) {
				if str(s["Effect"]) != "Allow" {
					continue
				}
				where := fmt.Sprintf("%s/Statement/%d", pol.Where, i)
				bad := func(format string, a ...interface{}) {
					out = append(out, finding{id, where, fmt.Sprintf(format, a...)})
				}
				res := strList(s["Resource"])
				for _, a := range strList(s["Action"]) {
					if !allowedActions[a] {
						bad("action %s is more than the function needs", a)
						continue
					}
					switch a {
					case "s3:PutObject", "s3:GetObject":
						if objects == "" || len(res) != 1 || res[0] != objects {
							bad("%s on %v; want only the objects under the store prefix, %s", a, res, objects)
						}
					case "s3:ListBucket":
						prefixes := strList(getPath(s, "Condition", "StringLike", "s3:prefix"))
						if bucketArn == "" || len(res) != 1 || res[0] != bucketArn {
							bad("%s on %v; want the store bucket %s", a, res, bucketArn)
						}
						if len(prefixes) == 0 {
							bad("%s without a StringLike s3:prefix condition lists the whole bucket", a)
						}
						for _, pre := range prefixes {
							if pre != listPrefix {
								bad("%s allowed for s3:prefix %q; want %q", a, pre, listPrefix)
							}
						}
					case "kms:GenerateDataKey", "kms:Decrypt":
						if keyArn == "" || len(res) != 1 || res[0] != keyArn {
							bad("%s on %v; want only CSRFN_KMS_KEY_ID, %s", a, res, keyArn)
						}
					case "logs:CreateLogStream", "logs:PutLogEvents":
						if logGroupArn == "" || len(res) != 1 || res[0] != logGroupArn {
							bad("%s on %v; want only the function's log group, %s", a, res, logGroupArn)
						}
					case "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes":
						for _, r := range res {
							if _, ok := d.refersTo(r, "Arn", "AWS::SQS::Queue"); !ok {
								bad("%s on %s; want a queue of this template", a, r)
							}
						}
					}
				}
			}
		}
	}
	return out
}

// ---- function configuration ----

func checkFunctionEnv(d *cfnDoc) []finding {
	const id = "function-env"
	var out []finding
	for _, fn := range d.ofType("AWS::Serverless::Function") {
		env, _ := getPath(props(fn.R), "Environment", "Variables").(map[string]interface{})
		store := str(env["CSRFN_STORE"])
		if m := s3StoreRE.FindStringSubmatch(store); m == nil {
			out = append(out, finding{id, fn.Name, fmt.Sprintf("CSRFN_STORE %q is not s3://${Bucket}/PREFIX", store)})
		} else if _, ok := d.refersTo(m[1], "", "AWS::S3::Bucket"); !ok {
			out = append(out, finding{id, fn.Name, fmt.Sprintf("CSRFN_STORE names %s, not a bucket of this template", m[1])})
		}
		key := env["CSRFN_KMS_KEY_ID"]
		if _, ok := d.refersTo(key, "Arn", "AWS::KMS::Key"); !ok {
			out = append(out, finding{id, fn.Name, fmt.Sprintf("CSRFN_KMS_KEY_ID %v is not the ARN of a KMS key of this template", key)})
		}
		// The bucket policy refuses objects not encrypted under the key, so
		// the store must name it on every PutObject.
		if sse, ok := env["CSRFN_S3_KMS_KEY_ID"]; !ok || str(sse) != str(key) {
			out = append(out, finding{id, fn.Name, fmt.Sprintf("CSRFN_S3_KMS_KEY_ID %v is not CSRFN_KMS_KEY_ID", sse)})
		}
		if str(env["CSRFN_LOG_LEVEL"]) == "" {
			out = append(out, finding{id, fn.Name, "CSRFN_LOG_LEVEL is not set"})
		}
	}
	return out
}

func checkFunctionLogging(d *cfnDoc) []finding {
	var out []finding
	for _, fn := range d.ofType("AWS::Serverless::Function") {
		lg, ok := d.refersTo(getPath(props(fn.R), "LoggingConfig", "LogGroup"), "", "AWS::Logs::LogGroup")
		if !ok {
			out = append(out, finding{"function-logging", fn.Name, "LoggingConfig.LogGroup is not a log group of this template (Lambda would create one that keeps logs forever)"})
			continue
		}
		if props(d.resources[lg])["RetentionInDays"] == nil {
			out = append(out, finding{"function-logging", lg, "no RetentionInDays"})
		}
	}
	return out
}

func checkScheduleDisabled(d *cfnDoc) []finding {
	const id = "schedule-disabled"
	var out []finding
	for _, fn := range d.ofType("AWS::Serverless::Function") {
		events, _ := props(fn.R)["Events"].(map[string]interface{})
		for _, name := range sortedKeys(events) {
			ev := events[name]
			t := str(getPath(ev, "Type"))
			if t != "Schedule" && t != "ScheduleV2" {
				continue
			}
			where := fn.Name + "/Events/" + name
			ep := getPath(ev, "Properties")
			enabled := getPath(ep, "Enabled")
			state := str(getPath(ep, "State"))
			if state != "DISABLED" && !isFalse(enabled) {
				out = append(out, finding{id, where, fmt.Sprintf("is enabled by default (Enabled %v, State %q)", enabled, state)})
			}
			if err := checkBatchJSON(str(getPath(ep, "Input"))); err != nil {
				out = append(out, finding{id, where, "Input: " + err.Error()})
			}
		}
	}
	return out
}

// checkBatchJSON accepts {"Requests":[…]} with 1 to 100 requests that each
// name a CommonName.
func checkBatchJSON(s string) error {
	var batch struct {
		Requests []map[string]interface{}
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&batch); err != nil {
		return fmt.Errorf("not a batch {\"Requests\":[…]}: %v", err)
	}
	if n := len(batch.Requests); n == 0 || n > 100 {
		return fmt.Errorf("%d requests (want 1 to 100)", n)
	}
	for i, r := range batch.Requests {
		if str(r["CommonName"]) == "" {
			return fmt.Errorf("request %d has no CommonName", i)
		}
	}
	return nil
}

func checkQueueRedrive(d *cfnDoc) []finding {
	const id = "queue-redrive"
	var out []finding
	for _, m := range d.ofType("AWS::Lambda::EventSourceMapping") {
		p := props(m.R)
		q, ok := d.refersTo(p["EventSourceArn"], "Arn", "AWS::SQS::Queue")
		if !ok {
			continue
		}
		if !hasString(strList(p["FunctionResponseTypes"]), "ReportBatchItemFailures") {
			out = append(out, finding{id, m.Name, "FunctionResponseTypes lacks ReportBatchItemFailures: one failed request would make the whole batch retry"})
		}
		if str(m.R["Condition"]) != str(d.resources[q]["Condition"]) {
			out = append(out, finding{id, m.Name, fmt.Sprintf("Condition %q differs from its queue's %q", str(m.R["Condition"]), str(d.resources[q]["Condition"]))})
		}
		qp := props(d.resources[q])
		rp := qp["RedrivePolicy"]
		if _, ok := d.refersTo(getPath(rp, "deadLetterTargetArn"), "Arn", "AWS::SQS::Queue"); !ok {
			out = append(out, finding{id, q, "no RedrivePolicy to a dead-letter queue of this template"})
		}
		if n, ok := getPath(rp, "maxReceiveCount").(float64); !ok || n < 1 {
			out = append(out, finding{id, q, "RedrivePolicy has no maxReceiveCount"})
		}
		if fn, ok := d.refersTo(p["FunctionName"], "", "AWS::Serverless::Function"); ok {
			timeout, _ := props(d.resources[fn])["Timeout"].(float64)
			if vt, _ := qp["VisibilityTimeout"].(float64); vt < timeout {
				out = append(out, finding{id, q, fmt.Sprintf("VisibilityTimeout %v is shorter than the function's Timeout %v", vt, timeout)})
			}
		}
	}
	return out
}

func checkRetainKeyMaterial(d *cfnDoc) []finding {
	var out []finding
	for _, r := range d.ofType("AWS::S3::Bucket", "AWS::KMS::Key") {
		for _, k := range []string{"DeletionPolicy", "UpdateReplacePolicy"} {
			if str(r.R[k]) != "Retain" {
				out = append(out, finding{"retain-key-material", r.Name, fmt.Sprintf("%s is %q (want Retain)", k, str(r.R[k]))})
			}
		}
	}
	return out
}

func sortedKeys(m map[string]interface{}) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
