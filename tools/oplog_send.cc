// peerdex-oplog-send: sends operation-log entries to peerdex-logd through the
// rpcgen-generated client stubs (libtirpc), as any ONC-RPC program would.
//   peerdex-oplog-send -H HOST [-p PORT] INSTANCE SEQ USER OPERATION [PATH [TIMESTAMP]]
// Without -p the port comes from rpcbind on HOST. Exit 0 when the entry was stored.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "oplog.h"

int main(int argc, char** argv)
{
    std::string host = "127.0.0.1";
    int port = 0;
    int c;
    while ((c = getopt(argc, argv, "H:p:h")) != -1) {
        if (c == 'H') {
            host = optarg;
        } else if (c == 'p') {
            port = std::atoi(optarg);
        } else {
            std::fprintf(stderr,
                         "usage: peerdex-oplog-send -H HOST [-p PORT] INSTANCE SEQ USER OPERATION [PATH [TS]]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (argc - optind < 4) {
        std::fprintf(stderr, "peerdex-oplog-send: need INSTANCE SEQ USER OPERATION (try -h)\n");
        return 2;
    }
    CLIENT* clnt;
    if (port == 0) {
        clnt = clnt_create(host.c_str(), OPLOG_PROG, OPLOG_VERS, "tcp");  // asks rpcbind
    } else {
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(static_cast<std::uint16_t>(port));
        if (inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1) {
            std::fprintf(stderr, "peerdex-oplog-send: -p needs a numeric IPv4 host\n");
            return 2;
        }
        int sock = RPC_ANYSOCK;
        clnt = clnttcp_create(&sa, OPLOG_PROG, OPLOG_VERS, &sock, 0, 0);
    }
    if (!clnt) {
        clnt_pcreateerror(host.c_str());
        return 1;
    }
    std::string path = argc - optind > 4 ? argv[optind + 4] : "";
    std::string ts = argc - optind > 5 ? argv[optind + 5] : "";
    oplog_entry e{};
    e.instance = std::strtoull(argv[optind], nullptr, 16);
    e.seq = std::strtoull(argv[optind + 1], nullptr, 10);
    e.user = argv[optind + 2];
    e.operation = argv[optind + 3];
    e.path = path.data();
    e.timestamp = ts.data();
    oplog_status* st = oplog_entry_1(&e, clnt);
    if (!st) {
        clnt_perror(clnt, "OPLOG_ENTRY");
        clnt_destroy(clnt);
        return 1;
    }
    const int rc = *st == OPLOG_OK ? 0 : 1;
    clnt_destroy(clnt);
    return rc;
}
