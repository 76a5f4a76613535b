// include/zcopy.h used from C++: it must compile with -Wall -Wextra -Werror, link against
// libzcopy and behave like from C.
#include <cstdio>
#include <cstring>

#include "zcopy.h"

int main() {
    zcopy_options o;
    zcopy_options_init(&o);
    zcopy_report r;
    zcopy_status st = zcopy_transfer(-1, 1, &o, &r);
    if (st != ZCOPY_STATUS_INVALID_ARGUMENT || r.bytes != 0) return 1;
    if (std::strcmp(zcopy_status_name(st), "INVALID_ARGUMENT") != 0) return 2;
    if (o.method != ZCOPY_METHOD_AUTO || o.count != ZCOPY_TO_EOF) return 3;
    zcopy_sender *s = nullptr;
    if (zcopy_sender_new(0, nullptr) != ZCOPY_STATUS_NULL_PARAMETER || s != nullptr) return 4;
    std::printf("C++: zcopy %s\n", zcopy_version());
    return 0;
}
