/*
 * pfprobe: one page-fault probe per process, for pfmodel's live-kernel oracle.
 *
 * The Python driver (pfmodel/oracle/probe.py) compiles this file on first use and
 * runs it once per case with key=value arguments.  The probe builds one mapping,
 * brings its target page into the requested pre-state, warms up everything the
 * measured window could otherwise fault on, makes exactly one access and prints
 * one JSON line of observations.  It touches nothing but its own memory (and a
 * temporary file it unlinks at once); the driver kills it after a timeout.
 *
 * Arguments (all optional but map/access):
 *   map=anon|file|hole|raw|growsdown|stack   what the target is
 *   share=private|shared                     anon/file mappings
 *   mprot=PROT                               protection at mmap time (none r w rw x rx rwx)
 *   npages=N page=N off=N                    mapping length, target page, byte offset
 *   fsize=N                                  file mappings: file size in bytes
 *   addr=HEX                                 raw: the target address
 *   gdpages=N below=N gap=N                  growsdown: VMA pages, target bytes below the
 *                                            VMA start, accessible neighbour ending gap
 *                                            bytes below the target page (-1: none)
 *   dist=N top=N                             stack: target rsp-N, or [stack] end - N
 *   sp_from=none|target|vma sp_off=N         run the access with rsp = base + N
 *   rlim_stack=N                             lower RLIMIT_STACK (this process only)
 *   pre=STEP,STEP                            read write dontneed fork forkexit mprotect:PROT
 *   access=read|write|exec|sys_read|sys_write|sys_pread
 *   len=N                                    syscall byte count
 *   tracefs=DIR                              tracefs instance: trace_marker
 *   tmpdir=DIR                               where the temporary files go
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/ucontext.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

#define PG 4096UL
#define MAXMAPS 256

/* ---- state the signal handler writes (pre-touched before the window) ---- */
static sigjmp_buf jb;
static volatile struct {
    int signo, code;
    uint64_t addr, err, trapno, cr2, rip;
} rec;
static char altstack[1 << 16] __attribute__((aligned(4096)));
static struct rusage ru0, ru1;
static char scratch[4096] __attribute__((aligned(4096)));

static void on_fault(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    rec.signo = sig;
    rec.code = si->si_code;
    rec.addr = (uint64_t)(uintptr_t)si->si_addr;
    rec.err = (uint64_t)uc->uc_mcontext.gregs[REG_ERR];
    rec.trapno = (uint64_t)uc->uc_mcontext.gregs[REG_TRAPNO];
    rec.cr2 = (uint64_t)uc->uc_mcontext.gregs[REG_CR2];
    rec.rip = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
    siglongjmp(jb, 1);
}

/* ---- small helpers ---- */
static void fail(const char *what)
{
    printf("{\"v\":1,\"setup_error\":\"%s: %s\"}\n", what, strerror(errno));
    fflush(stdout);
    _exit(3);
}

static int parse_prot(const char *s)
{
    int p = 0;
    if (strcmp(s, "none") == 0)
        return PROT_NONE;
    for (; *s; s++) {
        if (*s == 'r') p |= PROT_READ;
        else if (*s == 'w') p |= PROT_WRITE;
        else if (*s == 'x') p |= PROT_EXEC;
        else { errno = EINVAL; fail("bad prot"); }
    }
    return p;
}

static const char *arg(int argc, char **argv, const char *key, const char *dflt)
{
    size_t n = strlen(key);
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], key, n) == 0 && argv[i][n] == '=')
            return argv[i] + n + 1;
    return dflt;
}

static long long num(const char *s) { return strtoll(s, NULL, 0); }

/* ---- /proc/self/maps, read with raw syscalls into a static buffer ---- */
struct vma { uint64_t start, end; char perms[5]; char name[64]; };
static char mapsbuf[1 << 16];

static int read_maps(struct vma *out, int max)
{
    int fd = open("/proc/self/maps", O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n, len = 0;
    while ((n = read(fd, mapsbuf + len, sizeof mapsbuf - 1 - len)) > 0) len += n;
    close(fd);
    mapsbuf[len] = 0;
    int count = 0;
    char *line = mapsbuf;
    while (*line && count < max) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        struct vma *v = &out[count];
        char *p = line;
        v->start = strtoull(p, &p, 16);
        p++;                                   /* '-' */
        v->end = strtoull(p, &p, 16);
        p++;                                   /* ' ' */
        memcpy(v->perms, p, 4);
        v->perms[4] = 0;
        /* skip perms, offset, dev, inode: the name is the 6th field */
        for (int field = 0; field < 4 && *p; field++) {
            while (*p && *p != ' ') p++;
            while (*p == ' ') p++;
        }
        size_t k = 0;
        for (; *p && k < sizeof v->name - 1; p++)
            if (*p != '"' && *p != '\\') v->name[k++] = *p;
        v->name[k] = 0;
        count++;
        if (!nl) break;
        line = nl + 1;
    }
    return count;
}

static struct vma maps_before[MAXMAPS], maps_after[MAXMAPS];
static int nmaps_before, nmaps_after;

static void print_maps(const char *key, struct vma *v, int n)
{
    printf(",\"%s\":[", key);
    for (int i = 0; i < n; i++)
        printf("%s[\"0x%llx\",\"0x%llx\",\"%s\",\"%s\"]", i ? "," : "",
               (unsigned long long)v[i].start, (unsigned long long)v[i].end, v[i].perms, v[i].name);
    printf("]");
}

/* ---- pagemap: one 64-bit entry per page ---- */
static int pagemap_fd = -1;

static int pagemap_entry(uint64_t addr, uint64_t *out)
{
    if (pagemap_fd < 0) return 0;
    off_t off = (off_t)((addr / PG) * 8);
    if (off < 0) return 0;
    return pread(pagemap_fd, out, 8, off) == 8;
}

static void print_pagemap(const char *key, int ok, uint64_t value)
{
    if (ok) printf(",\"%s\":\"0x%llx\"", key, (unsigned long long)value);
    else printf(",\"%s\":null", key);
}

/* ---- warm-up: make the measured window contain only the target's faults ---- */
static int populate_text(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size; (void)data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        uint64_t start = (info->dlpi_addr + ph->p_vaddr) & ~(PG - 1);
        uint64_t end = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + PG - 1) & ~(PG - 1);
        madvise((void *)(uintptr_t)start, end - start, MADV_POPULATE_READ);
    }
    return 0;
}

static void touch_writable(volatile char *p, size_t len)
{
    for (size_t i = 0; i < len; i += PG) p[i] = p[i];
}

static void warm_up(void)
{
    dl_iterate_phdr(populate_text, NULL);
    /* After a fork every private page is copy-on-write: write the ones the window uses. */
    touch_writable(altstack, sizeof altstack);
    touch_writable(scratch, sizeof scratch);
    touch_writable((volatile char *)&rec, sizeof rec);
    touch_writable((volatile char *)&jb, sizeof jb);
    touch_writable((volatile char *)&ru0, sizeof ru0);
    touch_writable((volatile char *)&ru1, sizeof ru1);
    /* One dummy signal: its delivery updates rseq and faults in the handler's path. */
    if (sigsetjmp(jb, 1) == 0)
        raise(SIGSEGV);
    /* A dry run of the counter reads. */
    getrusage(RUSAGE_THREAD, &ru0);
    getrusage(RUSAGE_THREAD, &ru1);
    memset((void *)&rec, 0, sizeof rec);
}

/* ---- the accesses: one instruction each, never optimised away ---- */
static uint64_t access_rsp;

__attribute__((noinline)) static void do_read(volatile char *p)
{
    char c;
    __asm__ volatile("mov %%rsp, %0" : "=r"(access_rsp));
    __asm__ volatile("movb (%1), %0" : "=q"(c) : "r"(p) : "memory");
    (void)c;
}

__attribute__((noinline)) static void do_write(volatile char *p)
{
    __asm__ volatile("mov %%rsp, %0" : "=r"(access_rsp));
    __asm__ volatile("movb $0, (%0)" : : "r"(p) : "memory");
}

/* The access made with rsp moved to newsp, as a push below the stack would be. */
__attribute__((noinline)) static void do_read_sp(volatile char *p, uint64_t newsp)
{
    access_rsp = newsp;
    __asm__ volatile("mov %%rsp, %%r12\n\t"
                     "mov %1, %%rsp\n\t"
                     "movb (%0), %%al\n\t"
                     "mov %%r12, %%rsp"
                     : : "r"(p), "r"(newsp) : "r12", "rax", "memory");
}

__attribute__((noinline)) static void do_write_sp(volatile char *p, uint64_t newsp)
{
    access_rsp = newsp;
    __asm__ volatile("mov %%rsp, %%r12\n\t"
                     "mov %1, %%rsp\n\t"
                     "movb $0, (%0)\n\t"
                     "mov %%r12, %%rsp"
                     : : "r"(p), "r"(newsp) : "r12", "memory");
}

/*
 * Fetch: call the target with rax pointing at scratch memory and rdi/rsi zero (for the
 * vsyscall page, that is gettimeofday(NULL, NULL)).  A page of zeros decodes as
 * add %al,(%rax), so a fetch that succeeds runs to the end of the mapping and faults
 * on the guard page: si_addr != target means the fetch itself worked.
 */
__attribute__((noinline)) static void do_exec(void *p)
{
    uint64_t a = (uint64_t)(uintptr_t)scratch, d = 0, s = 0;
    __asm__ volatile("mov %%rsp, %0" : "=r"(access_rsp));
    __asm__ volatile("call *%3"
                     : "+a"(a), "+D"(d), "+S"(s)
                     : "r"(p)
                     : "rcx", "rdx", "r8", "r9", "r10", "r11", "memory", "cc");
}

/* ---- main ---- */
int main(int argc, char **argv)
{
    const char *map = arg(argc, argv, "map", "anon");
    const char *share = arg(argc, argv, "share", "private");
    const char *access = arg(argc, argv, "access", "read");
    const char *pre = arg(argc, argv, "pre", "");
    const char *tracefs = arg(argc, argv, "tracefs", "");
    const char *tmpdir = arg(argc, argv, "tmpdir", "/tmp");
    const char *sp_from = arg(argc, argv, "sp_from", "none");
    long long sp_off = num(arg(argc, argv, "sp_off", "0"));
    int mprot = parse_prot(arg(argc, argv, "mprot", "rw"));
    long npages = num(arg(argc, argv, "npages", "1"));
    long page = num(arg(argc, argv, "page", "0"));
    long off = num(arg(argc, argv, "off", "0"));
    long long fsize = num(arg(argc, argv, "fsize", "4096"));
    long len = num(arg(argc, argv, "len", "1"));
    long long rlim = num(arg(argc, argv, "rlim_stack", "0"));
    int shared = strcmp(share, "shared") == 0;
    uint64_t target = 0, anchor = 0, map_start = 0, map_end = 0;
    char path[4096];

    setvbuf(stdout, NULL, _IOFBF, 1 << 16);

    /* Handlers for SIGSEGV and SIGBUS on the alternate stack. */
    stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0 };
    if (sigaltstack(&ss, NULL) != 0) fail("sigaltstack");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL) != 0 || sigaction(SIGBUS, &sa, NULL) != 0) fail("sigaction");

    if (rlim > 0) {
        struct rlimit rl;
        getrlimit(RLIMIT_STACK, &rl);
        rl.rlim_cur = (rlim_t)rlim;
        if (setrlimit(RLIMIT_STACK, &rl) != 0) fail("setrlimit");
    }

    /* ---- build the mapping ---- */
    if (strcmp(map, "anon") == 0 || strcmp(map, "file") == 0) {
        /* A reservation with a PROT_NONE page on each side of the mapping. */
        size_t total = (size_t)(npages + 2) * PG;
        char *base = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (base == MAP_FAILED) fail("mmap reservation");
        int flags = (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED;
        int fd = -1;
        if (map[0] == 'f') {
            snprintf(path, sizeof path, "%s/pfprobe-XXXXXX", tmpdir);
            fd = mkstemp(path);
            if (fd < 0) fail("mkstemp");
            unlink(path);
            static char zeros[PG];
            for (long long done = 0; done < fsize;) {
                long long chunk = fsize - done < (long long)PG ? fsize - done : (long long)PG;
                if (write(fd, zeros, (size_t)chunk) != chunk) fail("write file");
                done += chunk;
            }
            if (fdatasync(fd) != 0) fail("fdatasync");
        } else {
            flags |= MAP_ANONYMOUS;
        }
        char *m = mmap(base + PG, (size_t)npages * PG, mprot, flags, fd, 0);
        if (m == MAP_FAILED) fail("mmap");
        map_start = (uint64_t)(uintptr_t)m;
        map_end = map_start + (uint64_t)npages * PG;
        target = map_start + (uint64_t)page * PG + (uint64_t)off;
        anchor = map_start;
    } else if (strcmp(map, "hole") == 0) {
        char *m = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) fail("mmap");
        if (munmap(m + PG, PG) != 0) fail("munmap");
        target = (uint64_t)(uintptr_t)(m + PG) + (uint64_t)off;
        anchor = (uint64_t)(uintptr_t)m;
    } else if (strcmp(map, "raw") == 0) {
        target = strtoull(arg(argc, argv, "addr", "0"), NULL, 0);
        anchor = target;
    } else if (strcmp(map, "growsdown") == 0) {
        /* A GROWSDOWN mapping at the top of an empty 64 MiB window. */
        long gdpages = num(arg(argc, argv, "gdpages", "1"));
        long long below = num(arg(argc, argv, "below", "8"));
        long long gap = num(arg(argc, argv, "gap", "-1"));
        size_t window = (size_t)64 << 20;
        char *w = mmap(NULL, window, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (w == MAP_FAILED) fail("mmap window");
        if (munmap(w, window) != 0) fail("munmap window");
        char *top = w + window - (size_t)gdpages * PG;
        char *m = mmap(top, (size_t)gdpages * PG, mprot,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_FIXED, -1, 0);
        if (m == MAP_FAILED) fail("mmap growsdown");
        map_start = (uint64_t)(uintptr_t)m;
        map_end = map_start + (uint64_t)gdpages * PG;
        target = map_start - (uint64_t)below;
        anchor = map_start;
        if (gap >= 0) {
            uint64_t nb_end = (target & ~(PG - 1)) - (uint64_t)gap;
            char *nb = mmap((void *)(uintptr_t)(nb_end - PG), PG, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
            if (nb == MAP_FAILED) fail("mmap neighbour");
        }
    } else if (strcmp(map, "stack") == 0) {
        uint64_t sp;
        __asm__ volatile("mov %%rsp, %0" : "=r"(sp));
        nmaps_before = read_maps(maps_before, MAXMAPS);
        for (int i = 0; i < nmaps_before; i++)
            if (strcmp(maps_before[i].name, "[stack]") == 0) {
                map_start = maps_before[i].start;
                map_end = maps_before[i].end;
            }
        if (!map_end) { errno = ENOENT; fail("no [stack] in /proc/self/maps"); }
        const char *top = arg(argc, argv, "top", NULL);
        if (top)
            target = map_end - (uint64_t)num(top);
        else
            target = sp - (uint64_t)num(arg(argc, argv, "dist", "65536"));
        anchor = map_start;
    } else {
        errno = EINVAL;
        fail("bad map");
    }

    /* ---- the pre-state steps, in order ---- */
    int child_pipe[2] = { -1, -1 };
    pid_t child = 0;
    char prebuf[512];
    snprintf(prebuf, sizeof prebuf, "%s", pre);
    for (char *save = NULL, *step = strtok_r(prebuf, ",", &save); step; step = strtok_r(NULL, ",", &save)) {
        volatile char *t = (volatile char *)(uintptr_t)target;
        uint64_t pg = target & ~(PG - 1);
        if (strcmp(step, "read") == 0) {
            char c = *t;
            (void)c;
        } else if (strcmp(step, "write") == 0) {
            *t = 0;
        } else if (strcmp(step, "dontneed") == 0) {
            if (madvise((void *)(uintptr_t)pg, PG, MADV_DONTNEED) != 0) fail("madvise");
        } else if (strncmp(step, "mprotect:", 9) == 0) {
            if (mprotect((void *)(uintptr_t)map_start, map_end - map_start, parse_prot(step + 9)) != 0)
                fail("mprotect");
        } else if (strcmp(step, "fork") == 0) {
            /* The child keeps the pages mapped until we are done. */
            if (pipe(child_pipe) != 0) fail("pipe");
            fflush(stdout);
            child = fork();
            if (child < 0) fail("fork");
            if (child == 0) {
                char c;
                close(child_pipe[1]);
                while (read(child_pipe[0], &c, 1) > 0) {}
                _exit(0);
            }
            close(child_pipe[0]);
        } else if (strcmp(step, "forkexit") == 0) {
            fflush(stdout);
            pid_t c = fork();
            if (c < 0) fail("fork");
            if (c == 0) _exit(0);
            waitpid(c, NULL, 0);
        } else {
            errno = EINVAL;
            fail("bad pre step");
        }
    }

    /* ---- syscall sources and sinks ---- */
    int pfd[2] = { -1, -1 }, src = -1;
    if (strcmp(access, "sys_read") == 0 || strcmp(access, "sys_write") == 0) {
        if (pipe(pfd) != 0) fail("pipe");
        if (strcmp(access, "sys_read") == 0) {
            static char data[PG];
            memset(data, 'A', sizeof data);
            if (write(pfd[1], data, (size_t)len) != len) fail("fill pipe");
        }
    } else if (strcmp(access, "sys_pread") == 0) {
        snprintf(path, sizeof path, "%s/pfprobe-src-XXXXXX", tmpdir);
        src = mkstemp(path);
        if (src < 0) fail("mkstemp");
        unlink(path);
        static char data[2 * PG];
        memset(data, 'A', sizeof data);
        if (write(src, data, sizeof data) != (ssize_t)sizeof data) fail("write src");
    }

    /* ---- tracefs: the driver's instance follows its children (event-fork);
     * markers with our pid cut the measured window out of the stream ---- */
    int marker = -1;
    char markbuf[128];
    if (tracefs[0]) {
        snprintf(path, sizeof path, "%s/trace_marker", tracefs);
        marker = open(path, O_WRONLY);
    }

    pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
    uint64_t pm_before = 0, pm_after = 0;
    int pm_ok_before, pm_ok_after;
    uint64_t newsp = 0;
    if (strcmp(sp_from, "target") == 0) newsp = target + (uint64_t)sp_off;
    else if (strcmp(sp_from, "vma") == 0) newsp = anchor + (uint64_t)sp_off;

    warm_up();
    nmaps_before = read_maps(maps_before, MAXMAPS);
    pm_ok_before = pagemap_entry(target, &pm_before);

    /* ---- the measured window ---- */
    long ret = 0;
    int err = 0, faulted = 0;
    int mlen = snprintf(markbuf, sizeof markbuf, "pfprobe begin %d\n", (int)getpid());
    if (marker >= 0 && write(marker, markbuf, (size_t)mlen) < 0) { /* best effort */ }
    getrusage(RUSAGE_THREAD, &ru0);
    if (sigsetjmp(jb, 1) == 0) {
        void *t = (void *)(uintptr_t)target;
        if (strcmp(access, "read") == 0) {
            if (newsp) do_read_sp(t, newsp); else do_read(t);
        } else if (strcmp(access, "write") == 0) {
            if (newsp) do_write_sp(t, newsp); else do_write(t);
        } else if (strcmp(access, "exec") == 0) {
            do_exec(t);
        } else if (strcmp(access, "sys_read") == 0) {
            ret = read(pfd[0], t, (size_t)len);
            err = ret < 0 ? errno : 0;
        } else if (strcmp(access, "sys_write") == 0) {
            ret = write(pfd[1], t, (size_t)len);
            err = ret < 0 ? errno : 0;
        } else if (strcmp(access, "sys_pread") == 0) {
            ret = pread(src, t, (size_t)len, 0);
            err = ret < 0 ? errno : 0;
        }
    } else {
        faulted = 1;
    }
    getrusage(RUSAGE_THREAD, &ru1);
    mlen = snprintf(markbuf, sizeof markbuf, "pfprobe end %d\n", (int)getpid());
    if (marker >= 0 && write(marker, markbuf, (size_t)mlen) < 0) { /* best effort */ }

    pm_ok_after = pagemap_entry(target, &pm_after);
    nmaps_after = read_maps(maps_after, MAXMAPS);

    /* ---- one JSON line ---- */
    struct rlimit rl;
    getrlimit(RLIMIT_STACK, &rl);
    printf("{\"v\":1,\"pid\":%d,\"target\":\"0x%llx\",\"anchor\":\"0x%llx\",\"rsp\":\"0x%llx\"",
           (int)getpid(), (unsigned long long)target, (unsigned long long)anchor,
           (unsigned long long)access_rsp);
    printf(",\"rlim_stack\":%lld,\"faulted\":%s", (long long)rl.rlim_cur, faulted ? "true" : "false");
    printf(",\"signal\":%d,\"si_code\":%d,\"si_addr\":\"0x%llx\",\"err\":\"0x%llx\",\"trapno\":%llu"
           ",\"cr2\":\"0x%llx\",\"rip\":\"0x%llx\"",
           faulted ? rec.signo : 0, faulted ? rec.code : 0, (unsigned long long)rec.addr,
           (unsigned long long)rec.err, (unsigned long long)rec.trapno,
           (unsigned long long)rec.cr2, (unsigned long long)rec.rip);
    printf(",\"ret\":%ld,\"errno\":%d", ret, err);
    printf(",\"minflt\":%ld,\"majflt\":%ld", ru1.ru_minflt - ru0.ru_minflt, ru1.ru_majflt - ru0.ru_majflt);
    print_pagemap("pm_before", pm_ok_before, pm_before);
    print_pagemap("pm_after", pm_ok_after, pm_after);
    print_maps("maps_before", maps_before, nmaps_before);
    print_maps("maps_after", maps_after, nmaps_after);
    printf("}\n");
    fflush(stdout);

    if (child > 0) {
        close(child_pipe[1]);
        waitpid(child, NULL, 0);
    }
    return 0;
}
