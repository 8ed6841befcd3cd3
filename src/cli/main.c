#include "clew/clew.h"
#include <stdio.h>
int main(void)
{
    printf("%s\n", clew_version_string());
    return 0;
}
