/* Hide AVX-512, VNNI and AMX from one process, so that ONNX Runtime (and every other library
 * that asks CPUID which kernels to run) takes the paths it takes on a CPU with AVX2 only.
 *
 * Linux's CPUID faulting (CPU flag cpuid_fault, arch_prctl ARCH_SET_CPUID) turns every CPUID
 * instruction of this thread, and of the threads it starts later, into a SIGSEGV. The handler
 * runs the real CPUID with faulting off for a moment, clears the bits below, and steps over
 * the two-byte instruction. avx2_only.py loads this with LD_PRELOAD; exec turns faulting off
 * and LD_PRELOAD turns it on again in the new program. Any other SIGSEGV gets the default
 * action, as without this library. A program that installs its own SIGSEGV handler (Python's
 * faulthandler, as pytest does) replaces this one: run benchmarks, not test runners, under it.
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define BIT(n) (1u << (n))

/* CPUID leaf 7, subleaf 0 */
#define HIDDEN_7_0_EBX (BIT(16) | BIT(17) | BIT(21) | BIT(26) | BIT(27) | BIT(28) | BIT(30) | BIT(31))
/* AVX512F DQ IFMA PF ER CD BW VL */
#define HIDDEN_7_0_ECX (BIT(1) | BIT(6) | BIT(11) | BIT(12) | BIT(14))
/* AVX512_VBMI VBMI2 VNNI BITALG VPOPCNTDQ */
#define HIDDEN_7_0_EDX (BIT(2) | BIT(3) | BIT(8) | BIT(22) | BIT(23) | BIT(24) | BIT(25))
/* AVX512_4VNNIW 4FMAPS VP2INTERSECT, AMX_BF16, AVX512_FP16, AMX_TILE, AMX_INT8 */
/* CPUID leaf 7, subleaf 1 */
#define HIDDEN_7_1_EAX (BIT(4) | BIT(5) | BIT(21) | BIT(23))
/* AVX_VNNI, AVX512_BF16, AMX_FP16, AVX_IFMA */
#define HIDDEN_7_1_EDX (BIT(4) | BIT(5) | BIT(19))
/* AVX_VNNI_INT8, AVX_NE_CONVERT, AVX10 */

static void set_cpuid_faulting(int on) { syscall(SYS_arch_prctl, ARCH_SET_CPUID, !on); }

static void on_sigsegv(int signal_number, siginfo_t *info, void *context) {
    greg_t *regs = ((ucontext_t *)context)->uc_mcontext.gregs;
    const uint8_t *ip = (const uint8_t *)regs[REG_RIP];
    (void)info;
    if (ip[0] != 0x0f || ip[1] != 0xa2) { /* not CPUID: a real fault, die as usual */
        signal(signal_number, SIG_DFL);
        return;
    }
    unsigned leaf = (unsigned)regs[REG_RAX], subleaf = (unsigned)regs[REG_RCX];
    unsigned eax, ebx, ecx, edx;
    set_cpuid_faulting(0);
    __cpuid_count(leaf, subleaf, eax, ebx, ecx, edx);
    set_cpuid_faulting(1);
    if (leaf == 7 && subleaf == 0) {
        ebx &= ~HIDDEN_7_0_EBX;
        ecx &= ~HIDDEN_7_0_ECX;
        edx &= ~HIDDEN_7_0_EDX;
    } else if (leaf == 7 && subleaf == 1) {
        eax &= ~HIDDEN_7_1_EAX;
        edx &= ~HIDDEN_7_1_EDX;
    }
    regs[REG_RAX] = eax;
    regs[REG_RBX] = ebx;
    regs[REG_RCX] = ecx;
    regs[REG_RDX] = edx;
    regs[REG_RIP] += 2;
}

__attribute__((constructor)) static void hide_avx512(void) {
    struct sigaction action = {0};
    action.sa_sigaction = on_sigsegv;
    action.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &action, 0);
    set_cpuid_faulting(1);
}
