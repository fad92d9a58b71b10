#pragma once

#include <stdio.h>

#include "ncri_error.h"

struct ncri_uname_result {
  char sysname[65];
  char release[65];
  char machine[65];
  char nodename[65];
};

int ncri_uname(ncri_uname_result *out, ncri_error *err);
