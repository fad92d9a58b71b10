// clone3/clone trampolines: the child starts on a stack we allocated and must call its
// entry function without returning through the parent's frames (which, with CLONE_VM,
// are live memory of the parent's thread). glibc exports no clone3; its clone() sets errno
// in the parent only, but we keep both paths symmetric and errno-free.
//
// x86_64: the kernel copies the parent's registers into the child except rax (0), rcx and
// r11 (clobbered by `syscall`), and sets rsp to the new stack. So fn/arg travel in r8/r9
// for clone3 (unused by its two arguments), and on the new stack for legacy clone (whose
// arguments occupy r8 and r10).
#if !defined(__x86_64__)
#error "clone trampolines are written for x86_64 only"
#endif

__asm__(
    ".text\n"
    ".globl ncri_clone3_run\n"
    ".hidden ncri_clone3_run\n"
    ".type ncri_clone3_run,@function\n"
    "ncri_clone3_run:\n"          // rdi=args rsi=size rdx=fn rcx=arg
    "  mov %rdx, %r8\n"
    "  mov %rcx, %r9\n"
    "  mov $435, %eax\n"          // __NR_clone3
    "  syscall\n"
    "  test %rax, %rax\n"
    "  jz 1f\n"
    "  ret\n"
    "1:\n"
    "  xor %ebp, %ebp\n"
    "  and $-16, %rsp\n"
    "  mov %r9, %rdi\n"
    "  call *%r8\n"
    "  mov %eax, %edi\n"
    "  mov $231, %eax\n"          // __NR_exit_group
    "  syscall\n"
    "  hlt\n"
    ".size ncri_clone3_run, .-ncri_clone3_run\n"

    ".globl ncri_clone_run\n"
    ".hidden ncri_clone_run\n"
    ".type ncri_clone_run,@function\n"
    "ncri_clone_run:\n"           // rdi=flags rsi=stack_top rdx=pidfd* rcx=fn r8=arg
    "  and $-16, %rsi\n"
    "  sub $16, %rsi\n"
    "  mov %rcx, 0(%rsi)\n"
    "  mov %r8, 8(%rsi)\n"
    "  xor %r10d, %r10d\n"        // child_tid
    "  xor %r8d, %r8d\n"          // tls
    "  mov $56, %eax\n"           // __NR_clone
    "  syscall\n"
    "  test %rax, %rax\n"
    "  jz 2f\n"
    "  ret\n"
    "2:\n"
    "  xor %ebp, %ebp\n"
    "  pop %rax\n"
    "  pop %rdi\n"
    "  call *%rax\n"
    "  mov %eax, %edi\n"
    "  mov $231, %eax\n"
    "  syscall\n"
    "  hlt\n"
    ".size ncri_clone_run, .-ncri_clone_run\n");
