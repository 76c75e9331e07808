"""The x86 hardware side only: bits, paging geometry, physical memory, the MMU walk.

Nothing in this package knows about the Linux kernel.
"""
