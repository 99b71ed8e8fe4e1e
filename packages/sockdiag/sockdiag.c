// One TCP socket's inode and owner uid, looked up by its 4-tuple through
// NETLINK_SOCK_DIAG: an exact query (a hash lookup in the kernel), where
// reading /proc/net/tcp formats every socket of the namespace, TIME_WAIT
// included, which on a busy host is hundreds of thousands of lines.
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static napi_value fail(napi_env env, const char* code, const char* message) {
  napi_throw_error(env, code, message);
  return NULL;
}

static int read_address(napi_env env, napi_value value, size_t want, void* out) {
  bool is_buffer = false;
  if (napi_is_buffer(env, value, &is_buffer) != napi_ok || !is_buffer) return 0;
  void* data = NULL;
  size_t length = 0;
  if (napi_get_buffer_info(env, value, &data, &length) != napi_ok || length != want) return 0;
  memcpy(out, data, want);
  return 1;
}

static int read_port(napi_env env, napi_value value, uint16_t* out) {
  uint32_t port = 0;
  if (napi_get_value_uint32(env, value, &port) != napi_ok || port > 65535) return 0;
  *out = htons((uint16_t)port);
  return 1;
}

// Per thread: a worker that loads the module gets its own socket, so replies never cross.
static __thread int diag_fd = -1;

static int diag_socket(int* error) {
  if (diag_fd >= 0) return diag_fd;
  diag_fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (diag_fd < 0) {
    *error = errno;
    return -1;
  }
  // The kernel answers at once; the timeout only guards against a kernel that never does.
  struct timeval tv = {.tv_sec = 1, .tv_usec = 0};
  setsockopt(diag_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return diag_fd;
}

static void close_diag_socket(void) {
  if (diag_fd >= 0) close(diag_fd);
  diag_fd = -1;
}

// One request, one reply: the query is not a dump, so the reply is a single
// message (the socket, or an error such as ENOENT).
static ssize_t exchange(int fd, const void* req, size_t req_len, void* buf, size_t buf_len,
                        int* error) {
  struct sockaddr_nl kernel;
  memset(&kernel, 0, sizeof kernel);
  kernel.nl_family = AF_NETLINK;
  ssize_t sent;
  do {
    sent = sendto(fd, req, req_len, 0, (struct sockaddr*)&kernel, sizeof kernel);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) {
    *error = errno;
    return -1;
  }
  ssize_t n;
  do {
    n = recv(fd, buf, buf_len, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) *error = errno;
  return n;
}

// lookupTcp(family 4|6, localAddress Buffer, localPort, remoteAddress Buffer, remotePort)
//   -> { inode, uid } | null (no such socket)
static napi_value lookup_tcp(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 5)
    return fail(env, "SYNLIMIT_INVALID_OPTION", "lookupTcp takes 5 arguments");
  uint32_t family = 0;
  napi_get_value_uint32(env, argv[0], &family);
  if (family != 4 && family != 6)
    return fail(env, "SYNLIMIT_INVALID_OPTION", "family must be 4 or 6");
  size_t bytes = family == 4 ? 4 : 16;

  struct {
    struct nlmsghdr nlh;
    struct inet_diag_req_v2 req;
  } msg;
  memset(&msg, 0, sizeof msg);
  msg.nlh.nlmsg_len = sizeof msg;
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  // No NLM_F_DUMP: the kernel looks up this one socket.
  msg.nlh.nlmsg_flags = NLM_F_REQUEST;
  msg.req.sdiag_family = family == 4 ? AF_INET : AF_INET6;
  msg.req.sdiag_protocol = IPPROTO_TCP;
  msg.req.idiag_states = ~0U;
  msg.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  msg.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  if (!read_address(env, argv[1], bytes, msg.req.id.idiag_src) ||
      !read_port(env, argv[2], &msg.req.id.idiag_sport) ||
      !read_address(env, argv[3], bytes, msg.req.id.idiag_dst) ||
      !read_port(env, argv[4], &msg.req.id.idiag_dport))
    return fail(env, "SYNLIMIT_INVALID_OPTION",
                "addresses must be Buffers of 4 (IPv4) or 16 (IPv6) bytes, ports 0-65535");

  long buf[2048];
  ssize_t n = -1;
  int error = 0;
  // The socket is kept between lookups (the gate makes one per client); a
  // failed exchange closes it and the next lookup opens a fresh one.
  int fd = diag_socket(&error);
  if (fd >= 0) n = exchange(fd, &msg, sizeof msg, buf, sizeof buf, &error);
  if (n < 0) {
    close_diag_socket();
    return fail(env, "SYNLIMIT_UNSUPPORTED_PLATFORM", strerror(error));
  }

  struct nlmsghdr* h = (struct nlmsghdr*)buf;
  if (!NLMSG_OK(h, (unsigned int)n))
    return fail(env, "SYNLIMIT_UNSUPPORTED_PLATFORM", "short sock_diag reply");
  napi_value result;
  if (h->nlmsg_type == NLMSG_ERROR) {
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
      return fail(env, "SYNLIMIT_UNSUPPORTED_PLATFORM", "short sock_diag error reply");
    struct nlmsgerr* err = (struct nlmsgerr*)NLMSG_DATA(h);
    if (err->error == -ENOENT) {
      napi_get_null(env, &result);
      return result;
    }
    return fail(env, "SYNLIMIT_UNSUPPORTED_PLATFORM", strerror(-err->error));
  }
  if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
      h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
    return fail(env, "SYNLIMIT_UNSUPPORTED_PLATFORM", "unexpected sock_diag reply");
  struct inet_diag_msg* m = (struct inet_diag_msg*)NLMSG_DATA(h);
  napi_value inode, uid;
  napi_create_object(env, &result);
  napi_create_double(env, (double)m->idiag_inode, &inode);
  napi_create_double(env, (double)m->idiag_uid, &uid);
  napi_set_named_property(env, result, "inode", inode);
  napi_set_named_property(env, result, "uid", uid);
  return result;
}

// A worker thread that loaded the module closes its socket when it ends.
static void cleanup(void* arg) {
  (void)arg;
  close_diag_socket();
}

NAPI_MODULE_INIT() {
  napi_add_env_cleanup_hook(env, cleanup, NULL);
  napi_value fn;
  napi_create_function(env, "lookupTcp", NAPI_AUTO_LENGTH, lookup_tcp, NULL, &fn);
  napi_set_named_property(env, exports, "lookupTcp", fn);
  return exports;
}
