// Built at install by node-gyp (binding.gyp). synlimit loads this package by
// name and reads /proc/net/tcp when it is absent or was not built.
module.exports = require("./build/Release/sockdiag.node");
