// SPDX-License-Identifier: GPL-2.0-only
/*
 * gma500_mock: a DRM driver without hardware, shaped like vgem, whose GEM
 * objects behave like gma500's. It exists so that shmemfuzz can test shmem's
 * swap paths for mappings limited to __GFP_DMA32 on any kernel.
 */

#include <linux/build_bug.h>
#include <linux/module.h>
#include <linux/platform_device.h>

#include <drm/drm.h>
#include <drm/drm_drv.h>
#include <drm/drm_file.h>
#include <drm/drm_gem.h>
#include <drm/drm_ioctl.h>

#include "gma500_mock_drv.h"

#define DRIVER_NAME	"gma500_mock"
#define DRIVER_DESC	"Mock GMA500 GEM provider for shmem testing"
#define DRIVER_DATE	"20250101"
#define DRIVER_MAJOR	1
#define DRIVER_MINOR	0

/* The uapi header spells DRM_IOWR(DRM_COMMAND_BASE + nr) without drm.h. */
#define GMA500_MOCK_CHECK_IOCTL(name, type) \
	static_assert(DRM_IOCTL_GMA500_MOCK_##name == \
		      DRM_IOWR(DRM_COMMAND_BASE + DRM_GMA500_MOCK_##name, type))
GMA500_MOCK_CHECK_IOCTL(GEM_CREATE, struct drm_gma500_mock_gem_create);
GMA500_MOCK_CHECK_IOCTL(PIN, struct drm_gma500_mock_pin);
GMA500_MOCK_CHECK_IOCTL(UNPIN, struct drm_gma500_mock_pin);
GMA500_MOCK_CHECK_IOCTL(SHMEM_FD, struct drm_gma500_mock_shmem_fd);
GMA500_MOCK_CHECK_IOCTL(SET_DMA32, struct drm_gma500_mock_set_dma32);
GMA500_MOCK_CHECK_IOCTL(PAGE_INFO, struct drm_gma500_mock_page_info);

static struct gma500_mock_device *gma500_mock_device;

/* Errors of each ioctl: see the uapi header. */
static const struct drm_ioctl_desc gma500_mock_ioctls[] = {
	DRM_IOCTL_DEF_DRV(GMA500_MOCK_GEM_CREATE, gma500_mock_gem_create_ioctl,
			  DRM_RENDER_ALLOW),
	DRM_IOCTL_DEF_DRV(GMA500_MOCK_PIN, gma500_mock_pin_ioctl,
			  DRM_RENDER_ALLOW),
	DRM_IOCTL_DEF_DRV(GMA500_MOCK_UNPIN, gma500_mock_unpin_ioctl,
			  DRM_RENDER_ALLOW),
	DRM_IOCTL_DEF_DRV(GMA500_MOCK_SHMEM_FD, gma500_mock_shmem_fd_ioctl,
			  DRM_RENDER_ALLOW),
	DRM_IOCTL_DEF_DRV(GMA500_MOCK_SET_DMA32, gma500_mock_set_dma32_ioctl,
			  DRM_RENDER_ALLOW),
	DRM_IOCTL_DEF_DRV(GMA500_MOCK_PAGE_INFO, gma500_mock_page_info_ioctl,
			  DRM_RENDER_ALLOW),
};

DEFINE_DRM_GEM_FOPS(gma500_mock_fops);

static const struct drm_driver gma500_mock_driver = {
	.driver_features	= DRIVER_GEM | DRIVER_RENDER,
	.ioctls			= gma500_mock_ioctls,
	.num_ioctls		= ARRAY_SIZE(gma500_mock_ioctls),
	.fops			= &gma500_mock_fops,
	.dumb_create		= gma500_mock_dumb_create,
	.dumb_map_offset	= drm_gem_dumb_map_offset,
	.name			= DRIVER_NAME,
	.desc			= DRIVER_DESC,
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 14, 0)
	/* unused from 6.12 on, removed in 6.14 */
	.date			= DRIVER_DATE,
#endif
	.major			= DRIVER_MAJOR,
	.minor			= DRIVER_MINOR,
};

static int __init gma500_mock_init(void)
{
	struct platform_device *pdev;
	int ret;

	pdev = platform_device_register_simple(DRIVER_NAME, -1, NULL, 0);
	if (IS_ERR(pdev))
		return PTR_ERR(pdev);

	if (!devres_open_group(&pdev->dev, NULL, GFP_KERNEL)) {
		ret = -ENOMEM;
		goto out_unregister;
	}

	gma500_mock_device = devm_drm_dev_alloc(&pdev->dev, &gma500_mock_driver,
						struct gma500_mock_device, drm);
	if (IS_ERR(gma500_mock_device)) {
		ret = PTR_ERR(gma500_mock_device);
		goto out_devres;
	}
	gma500_mock_device->pdev = pdev;
	mutex_init(&gma500_mock_device->objects_lock);
	INIT_LIST_HEAD(&gma500_mock_device->objects);

	ret = drm_dev_register(&gma500_mock_device->drm, 0);
	if (ret)
		goto out_devres;

	return 0;

out_devres:
	devres_release_group(&pdev->dev, NULL);
out_unregister:
	platform_device_unregister(pdev);
	return ret;
}

static void __exit gma500_mock_exit(void)
{
	struct platform_device *pdev = gma500_mock_device->pdev;

	drm_dev_unregister(&gma500_mock_device->drm);
	devres_release_group(&pdev->dev, NULL);
	platform_device_unregister(pdev);
}

module_init(gma500_mock_init);
module_exit(gma500_mock_exit);

MODULE_DESCRIPTION(DRIVER_DESC);
MODULE_LICENSE("GPL");
