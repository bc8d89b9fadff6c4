// The tests run on Node.js 20; the AWS SDK's notice that its releases from January 2027 need
// Node.js 22 would otherwise print once per test file and per CLI child process.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
