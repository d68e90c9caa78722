/*
 * umx/abi.h - the kernel's umad ABI (<rdma/ib_user_mad.h>) together with
 * libibumad's MAD types (<infiniband/umad_types.h>).  Both headers define a
 * `struct ib_user_mad`; the kernel's is taken here under another name
 * (struct umx_kernel_user_mad), everything else keeps its ABI name.
 * Include this instead of either header.
 */
#ifndef UMX_ABI_H
#define UMX_ABI_H

#define ib_user_mad umx_kernel_user_mad
#include <rdma/ib_user_mad.h>
#undef ib_user_mad
#include <infiniband/umad.h>
#include <infiniband/umad_types.h>
#include <infiniband/umad_cm.h>

#endif
