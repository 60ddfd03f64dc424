/*
 * Bare-metal start for the SMP guests of tests/peer/hostile-peer.py:
 * two CPUs at EL1 with the MMU off, each with a stack, and a vector
 * table that counts synchronous aborts and steps over the access.
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

    .text
    .global _start
_start:
    adr     x1, vectors
    msr     vbar_el1, x1
    ldr     x1, =stack0_top
    mov     sp, x1
    isb
    bl      main0
1:  wfi
    b       1b

    .global secondary_entry
secondary_entry:
    adr     x1, vectors
    msr     vbar_el1, x1
    ldr     x1, =stack1_top
    mov     sp, x1
    isb
    bl      main1
1:  wfi
    b       1b

    /* x0 = function, x1..x3 arguments: PSCI over HVC */
    .global psci_call
psci_call:
    hvc     #0
    ret

/* Current EL with SP_ELx, synchronous: count it, skip the access. */
    .balign 2048
vectors:
    .skip   0x200
    stp     x0, x1, [sp, #-16]!
    mrs     x0, mpidr_el1
    and     x0, x0, #0xff
    ldr     x1, =abort_count
    add     x1, x1, x0, lsl #3
    ldr     x0, [x1]
    add     x0, x0, #1
    str     x0, [x1]
    mrs     x0, elr_el1
    add     x0, x0, #4
    msr     elr_el1, x0
    ldp     x0, x1, [sp], #16
    eret
    .balign 128
    /* Anything else: stop this CPU. */
    .rept   13
    .balign 128
1:  wfi
    b       1b
    .endr

    .bss
    .balign 16
    .skip   16384
stack0_top:
    .skip   16384
stack1_top:
