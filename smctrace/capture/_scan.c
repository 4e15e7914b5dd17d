/*
 * smctrace.capture._scan -- the offline prefilter's inner loop in C.
 *
 * Walks pcap records / pcapng packet blocks inside one buffer and returns at the first
 * frame that could matter for SMC (a "candidate"), so Python runs once per candidate,
 * not once per frame.  The candidate rule and the header parsing mirror
 * smctrace/packet.py (locate_ip, parse_tcp_from_ip) and smctrace/capture/prefilter.py
 * exactly; tests/test_scan_equivalence.py checks both agree on random and mutated input.
 *
 * Every read is bounds-checked against the frame length: the input is untrusted.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define BITMAP_BYTES 8192 /* 65536 flow-hash bits */

#define STATUS_STOP 0      /* Python must look at the record/block at `offset` */
#define STATUS_CANDIDATE 1 /* the record/block at `offset` is a candidate */

#define LINKTYPE_NULL 0
#define LINKTYPE_ETHERNET 1
#define LINKTYPE_RAW_ALT_12 12
#define LINKTYPE_RAW_ALT_14 14
#define LINKTYPE_RAW 101
#define LINKTYPE_LOOP 108
#define LINKTYPE_LINUX_SLL 113
#define LINKTYPE_IPV4 228
#define LINKTYPE_IPV6 229
#define LINKTYPE_LINUX_SLL2 276

#define PCAPNG_EPB 6u
#define PCAPNG_SPB 3u

#define MAX_IPV6_EXT_HEADERS 16
#define IPPROTO_TCP_NUM 6

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04

static inline unsigned be16(const uint8_t *p) { return ((unsigned)p[0] << 8) | p[1]; }

static inline uint32_t load32(const uint8_t *p, int swapped)
{
    uint32_t value;
    memcpy(&value, p, 4);
    return swapped ? __builtin_bswap32(value) : value;
}

static inline int is_vlan_ethertype(unsigned ethertype)
{
    return ethertype == 0x8100 || ethertype == 0x88A8 || ethertype == 0x9100;
}

/* Follow VLAN tags from an EtherType field; sets *ip_offset and returns the IP version,
 * or 0 when the frame does not carry IPv4/IPv6. */
static int after_ethertype(const uint8_t *d, Py_ssize_t len, Py_ssize_t type_offset,
                           Py_ssize_t payload_offset, Py_ssize_t *ip_offset)
{
    unsigned ethertype;
    if (type_offset + 2 > len)
        return 0;
    ethertype = be16(d + type_offset);
    while (is_vlan_ethertype(ethertype)) {
        if (payload_offset + 4 > len)
            return 0;
        ethertype = be16(d + payload_offset + 2);
        payload_offset += 4;
    }
    *ip_offset = payload_offset;
    if (ethertype == 0x0800)
        return 4;
    if (ethertype == 0x86DD)
        return 6;
    return 0;
}

static int locate_ip(const uint8_t *d, Py_ssize_t len, long linktype, Py_ssize_t *ip_offset)
{
    uint32_t family;
    switch (linktype) {
    case LINKTYPE_ETHERNET:
        return after_ethertype(d, len, 12, 14, ip_offset);
    case LINKTYPE_LINUX_SLL:
        return after_ethertype(d, len, 14, 16, ip_offset);
    case LINKTYPE_LINUX_SLL2:
        if (len < 20)
            return 0;
        return after_ethertype(d, len, 0, 20, ip_offset);
    case LINKTYPE_RAW:
    case LINKTYPE_RAW_ALT_12:
    case LINKTYPE_RAW_ALT_14:
        if (len < 1)
            return 0;
        *ip_offset = 0;
        return (d[0] >> 4 == 4 || d[0] >> 4 == 6) ? d[0] >> 4 : 0;
    case LINKTYPE_IPV4:
        *ip_offset = 0;
        return 4;
    case LINKTYPE_IPV6:
        *ip_offset = 0;
        return 6;
    case LINKTYPE_NULL:
    case LINKTYPE_LOOP:
        if (len < 4)
            return 0;
        /* Host order for NULL, network order for LOOP, and writers mix them up: a family
         * fits in 16 bits, so a value above that is the other byte order. */
        family = (uint32_t)d[0] | ((uint32_t)d[1] << 8) | ((uint32_t)d[2] << 16) |
                 ((uint32_t)d[3] << 24);
        if (family > 0xFFFF)
            family = __builtin_bswap32(family);
        *ip_offset = 4;
        if (family == 2)
            return 4;
        if (family == 24 || family == 28 || family == 30)
            return 6;
        return 0;
    default:
        return 0;
    }
}

/* Sets *tcp_offset and *ip_end for a first-fragment IPv4 TCP packet; returns 0 if not. */
static int ipv4_tcp_offset(const uint8_t *d, Py_ssize_t len, Py_ssize_t offset,
                           Py_ssize_t *tcp_offset, Py_ssize_t *ip_end)
{
    Py_ssize_t header_len;
    unsigned total_len;
    if (offset + 20 > len || d[offset] >> 4 != 4)
        return 0;
    header_len = (Py_ssize_t)(d[offset] & 0x0F) * 4;
    if (header_len < 20 || offset + header_len > len)
        return 0;
    if (d[offset + 9] != IPPROTO_TCP_NUM)
        return 0;
    if (be16(d + offset + 6) & 0x1FFF)
        return 0; /* not the first fragment */
    total_len = be16(d + offset + 2);
    if (total_len == 0)
        *ip_end = len; /* TSO / BIG TCP on the sender: the capture is all there is */
    else if ((Py_ssize_t)total_len < header_len)
        return 0;
    else
        *ip_end = offset + (Py_ssize_t)total_len;
    *tcp_offset = offset + header_len;
    return 1;
}

static int ipv6_tcp_offset(const uint8_t *d, Py_ssize_t len, Py_ssize_t offset,
                           Py_ssize_t *tcp_offset, Py_ssize_t *ip_end)
{
    unsigned payload_len, next_header;
    Py_ssize_t limit, cursor, header_len;
    int i;
    if (offset + 40 > len || d[offset] >> 4 != 6)
        return 0;
    payload_len = be16(d + offset + 4);
    *ip_end = payload_len ? offset + 40 + (Py_ssize_t)payload_len : len;
    limit = *ip_end < len ? *ip_end : len;
    next_header = d[offset + 6];
    cursor = offset + 40;
    for (i = 0; i < MAX_IPV6_EXT_HEADERS; i++) {
        if (next_header == IPPROTO_TCP_NUM) {
            *tcp_offset = cursor;
            return 1;
        }
        if (cursor + 8 > limit)
            return 0;
        switch (next_header) {
        case 0: case 43: case 60: case 135: case 139: case 140: case 253: case 254:
            header_len = ((Py_ssize_t)d[cursor + 1] + 1) * 8;
            break;
        case 44:
            if (be16(d + cursor + 2) & 0xFFF8)
                return 0; /* not the first fragment */
            header_len = 8;
            break;
        case 51:
            header_len = ((Py_ssize_t)d[cursor + 1] + 2) * 4;
            break;
        default:
            return 0;
        }
        next_header = d[cursor];
        cursor += header_len;
    }
    return 0;
}

static inline uint32_t fnv1a(uint32_t hash, const uint8_t *p, Py_ssize_t n)
{
    Py_ssize_t i;
    for (i = 0; i < n; i++) {
        hash ^= p[i];
        hash *= 16777619u;
    }
    return hash;
}

#define TCP_ACK 0x10
#define SYN_MEMORY_SLOTS 4096 /* syn_memory: uint32 slots, then one uint32 counter */

/* The SMC option (kind 254, even length >= 6, ExID E2D4C3D9) in d[start:end]; the walk
 * stops where Linux's does (EOL, missing or impossible length). Mirrors
 * smctrace.packet.has_smc_option. */
static int has_smc_option(const uint8_t *d, Py_ssize_t start, Py_ssize_t end)
{
    Py_ssize_t cursor = start;
    while (cursor < end) {
        uint8_t kind = d[cursor], option_len;
        if (kind == 0)
            return 0;
        if (kind == 1) {
            cursor++;
            continue;
        }
        if (cursor + 1 >= end)
            return 0;
        option_len = d[cursor + 1];
        if (option_len < 2 || cursor + option_len > end)
            return 0;
        if (kind == 254 && option_len >= 6 && option_len % 2 == 0 && d[cursor + 2] == 0xE2 &&
            d[cursor + 3] == 0xD4 && d[cursor + 4] == 0xC3 && d[cursor + 5] == 0xD9)
            return 1;
        cursor += option_len;
    }
    return 0;
}

/* Count a client SYN without the SMC option once: a direct-mapped memory of recent
 * (flow, ISN) keys drops retransmitted SYNs. Mirrors prefilter._note_plain_syn. */
static void note_plain_syn(uint32_t *memory, uint32_t flow, const uint8_t *seq)
{
    uint32_t key = fnv1a(flow, seq, 4);
    if (key == 0)
        key = 1; /* 0 marks an empty slot */
    if (memory[key & (SYN_MEMORY_SLOTS - 1)] != key) {
        memory[key & (SYN_MEMORY_SLOTS - 1)] = key;
        memory[SYN_MEMORY_SLOTS]++;
    }
}

/* The candidate rule (mirrors prefilter.python_is_candidate): a first-fragment TCP
 * segment that
 *   - carries payload starting with a CLC eyecatcher, or
 *   - is a SYN or SYN-ACK carrying the SMC option, or
 *   - belongs to a watched flow and has SYN/FIN/RST or payload.
 * Everything else is skipped; a client SYN without the option is only counted. */
static int frame_is_candidate(const uint8_t *d, Py_ssize_t len, long linktype,
                              const uint8_t *bitmap, uint32_t *syn_memory)
{
    Py_ssize_t ip_offset = 0, tcp_offset = 0, ip_end = 0, captured_end, payload_start;
    Py_ssize_t address_len;
    const uint8_t *payload, *src;
    uint32_t hash;
    unsigned index;
    uint8_t flags;
    int version = locate_ip(d, len, linktype, &ip_offset);
    if (version == 4) {
        if (!ipv4_tcp_offset(d, len, ip_offset, &tcp_offset, &ip_end))
            return 0;
    } else if (version == 6) {
        if (!ipv6_tcp_offset(d, len, ip_offset, &tcp_offset, &ip_end))
            return 0;
    } else {
        return 0;
    }
    captured_end = ip_end < len ? ip_end : len;
    if (tcp_offset + 20 > captured_end)
        return 0;
    payload_start = tcp_offset + (Py_ssize_t)(d[tcp_offset + 12] >> 4) * 4;
    if (payload_start < tcp_offset + 20 || payload_start > captured_end)
        return 0;
    flags = d[tcp_offset + 13];
    if (!(flags & (TCP_SYN | TCP_FIN | TCP_RST)) && payload_start == captured_end)
        return 0; /* a bare ACK: the bulk of every capture */
    payload = d + payload_start;
    if (captured_end - payload_start >= 4 && payload[0] == 0xE2 && payload[1] == 0xD4 &&
        payload[2] == 0xC3 && (payload[3] == 0xD9 || payload[3] == 0xC4))
        return 1;
    address_len = version == 4 ? 4 : 16;
    src = d + ip_offset + (version == 4 ? 12 : 8);
    hash = fnv1a(2166136261u, src, 2 * address_len); /* src || dst are adjacent */
    hash = fnv1a(hash, d + tcp_offset, 4);            /* sport || dport, big-endian */
    index = (hash ^ (hash >> 16)) & 0xFFFF;
    if ((bitmap[index >> 3] >> (index & 7)) & 1)
        return 1;
    if (flags & TCP_SYN) {
        if (has_smc_option(d, tcp_offset + 20, payload_start))
            return 1;
        if (!(flags & TCP_ACK) && syn_memory != NULL)
            note_plain_syn(syn_memory, hash, d + tcp_offset + 4);
    }
    return 0;
}

static int check_bitmap(const Py_buffer *bitmap)
{
    if (bitmap->len != BITMAP_BYTES) {
        PyErr_Format(PyExc_ValueError, "bitmap must be %d bytes, got %zd", BITMAP_BYTES,
                     bitmap->len);
        return 0;
    }
    return 1;
}

static void release_optional(Py_buffer *buffer)
{
    if (buffer->obj != NULL)
        PyBuffer_Release(buffer);
}

/* The optional syn_memory argument: writable, SYN_MEMORY_SLOTS + 1 native uint32. */
static int check_syn_memory(const Py_buffer *memory)
{
    if (memory->buf == NULL)
        return 1;
    if (memory->len != (Py_ssize_t)(4 * (SYN_MEMORY_SLOTS + 1)) ||
        (uintptr_t)memory->buf % sizeof(uint32_t)) {
        PyErr_SetString(PyExc_ValueError, "syn_memory must be an aligned array of 4097 uint32");
        return 0;
    }
    return 1;
}

static int check_range(const Py_buffer *buf, Py_ssize_t start, Py_ssize_t end)
{
    if (start < 0 || start > end || end > buf->len) {
        PyErr_Format(PyExc_ValueError, "bad range %zd..%zd for a buffer of %zd bytes", start,
                     end, buf->len);
        return 0;
    }
    return 1;
}

PyDoc_STRVAR(is_candidate_doc,
             "is_candidate(data, linktype, bitmap[, syn_memory]) -> bool\n\n"
             "Apply the candidate rule to one frame.");

static PyObject *py_is_candidate(PyObject *self, PyObject *args)
{
    Py_buffer data, bitmap, memory = {0};
    long linktype;
    int result;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*ly*|w*", &data, &linktype, &bitmap, &memory))
        return NULL;
    if (!check_bitmap(&bitmap) || !check_syn_memory(&memory)) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&bitmap);
        release_optional(&memory);
        return NULL;
    }
    result = frame_is_candidate(data.buf, data.len, linktype, bitmap.buf, memory.buf);
    PyBuffer_Release(&data);
    PyBuffer_Release(&bitmap);
    release_optional(&memory);
    return PyBool_FromLong(result);
}

PyDoc_STRVAR(scan_pcap_doc,
             "scan_pcap(buf, start, end, swapped, linktype, max_caplen, bitmap[, syn_memory])\n"
             "    -> (status, offset, frames_walked)\n\n"
             "Walk classic pcap records in buf[start:end].  status 1: the record at offset\n"
             "is a candidate (counted in frames_walked).  status 0: the record at offset is\n"
             "incomplete or its captured length exceeds max_caplen; Python decides.");

static PyObject *py_scan_pcap(PyObject *self, PyObject *args)
{
    Py_buffer buf, bitmap, memory = {0};
    Py_ssize_t start, end, pos, frames = 0;
    int swapped, status = STATUS_STOP;
    long linktype;
    unsigned long max_caplen;
    const uint8_t *base;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnplky*|w*", &buf, &start, &end, &swapped, &linktype,
                          &max_caplen, &bitmap, &memory))
        return NULL;
    if (!check_bitmap(&bitmap) || !check_syn_memory(&memory) || !check_range(&buf, start, end)) {
        PyBuffer_Release(&buf);
        PyBuffer_Release(&bitmap);
        release_optional(&memory);
        return NULL;
    }
    base = buf.buf;
    pos = start;
    for (;;) {
        uint32_t caplen;
        if (end - pos < 16)
            break;
        caplen = load32(base + pos + 8, swapped);
        if (caplen > max_caplen || (size_t)caplen > (size_t)(end - pos - 16))
            break;
        frames++;
        if (frame_is_candidate(base + pos + 16, (Py_ssize_t)caplen, linktype, bitmap.buf,
                               memory.buf)) {
            status = STATUS_CANDIDATE;
            break;
        }
        pos += 16 + (Py_ssize_t)caplen;
    }
    PyBuffer_Release(&buf);
    PyBuffer_Release(&bitmap);
    release_optional(&memory);
    return Py_BuildValue("(inn)", status, pos, frames);
}

PyDoc_STRVAR(scan_pcapng_doc,
             "scan_pcapng(buf, start, end, swapped, linktypes, bitmap[, syn_memory])\n"
             "    -> (status, offset, frames_walked, last_epb_offset)\n\n"
             "Walk pcapng EPB/SPB blocks in buf[start:end]; linktypes is a buffer of\n"
             "native uint32 link types, one per interface of the current section.\n"
             "status 1: the block at offset is a candidate.  status 0: the block at offset\n"
             "is not a packet block, incomplete or inconsistent; Python decides.\n"
             "last_epb_offset is the last EPB walked (timestamp source for SPBs) or -1.");

static PyObject *py_scan_pcapng(PyObject *self, PyObject *args)
{
    Py_buffer buf, linktypes, bitmap, memory = {0};
    Py_ssize_t start, end, pos, frames = 0, last_epb = -1, n_interfaces;
    int swapped, status = STATUS_STOP;
    const uint8_t *base;
    const uint8_t *linktype_bytes;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnpy*y*|w*", &buf, &start, &end, &swapped, &linktypes,
                          &bitmap, &memory))
        return NULL;
    if (!check_bitmap(&bitmap) || !check_syn_memory(&memory) || !check_range(&buf, start, end)) {
        PyBuffer_Release(&buf);
        PyBuffer_Release(&linktypes);
        PyBuffer_Release(&bitmap);
        release_optional(&memory);
        return NULL;
    }
    base = buf.buf;
    linktype_bytes = linktypes.buf;
    n_interfaces = linktypes.len / 4;
    pos = start;
    for (;;) {
        uint32_t block_type, total, body_len, caplen, interface;
        const uint8_t *body, *frame;
        uint32_t linktype;
        if (end - pos < 12)
            break;
        block_type = load32(base + pos, swapped);
        total = load32(base + pos + 4, swapped);
        if (total < 12 || total % 4 || (size_t)total > (size_t)(end - pos))
            break;
        if (load32(base + pos + total - 4, swapped) != total)
            break; /* trailing length differs: corrupt, Python reports it */
        body = base + pos + 8;
        body_len = total - 12;
        if (block_type == PCAPNG_EPB) {
            if (body_len < 20)
                break;
            interface = load32(body, swapped);
            caplen = load32(body + 12, swapped);
            if ((Py_ssize_t)interface >= n_interfaces || caplen > body_len - 20)
                break;
            frame = body + 20;
            last_epb = pos;
        } else if (block_type == PCAPNG_SPB) {
            uint32_t orig_len;
            if (body_len < 4 || n_interfaces == 0)
                break;
            interface = 0;
            orig_len = load32(body, swapped);
            caplen = orig_len < body_len - 4 ? orig_len : body_len - 4;
            frame = body + 4;
        } else {
            break;
        }
        memcpy(&linktype, linktype_bytes + 4 * (size_t)interface, 4);
        frames++;
        if (frame_is_candidate(frame, (Py_ssize_t)caplen, (long)linktype, bitmap.buf,
                               memory.buf)) {
            status = STATUS_CANDIDATE;
            break;
        }
        pos += (Py_ssize_t)total;
    }
    PyBuffer_Release(&buf);
    PyBuffer_Release(&linktypes);
    PyBuffer_Release(&bitmap);
    release_optional(&memory);
    return Py_BuildValue("(innn)", status, pos, frames, last_epb);
}

static PyMethodDef scan_methods[] = {
    {"is_candidate", py_is_candidate, METH_VARARGS, is_candidate_doc},
    {"scan_pcap", py_scan_pcap, METH_VARARGS, scan_pcap_doc},
    {"scan_pcapng", py_scan_pcapng, METH_VARARGS, scan_pcapng_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef scan_module = {
    PyModuleDef_HEAD_INIT,
    "smctrace.capture._scan",
    "Native inner loop of the offline SMC prefilter (see prefilter.py).",
    -1,
    scan_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__scan(void) { return PyModule_Create(&scan_module); }
